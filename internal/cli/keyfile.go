package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/keyless-cd/keyless/internal/render"
	"github.com/keyless-cd/keyless/internal/sopsfile"
)

// sopsAgeKeyFileEnv is the sops CLI's variable naming the age key file;
// keyless reads it as the default --decryption-key-file.
const sopsAgeKeyFileEnv = "SOPS_AGE_KEY_FILE"

// maxKeyFileBytes bounds a key file read (a Secret holds at most 1 MiB).
const maxKeyFileBytes = 1 << 20

// keyFilePath is path, else $SOPS_AGE_KEY_FILE ("" when neither is set).
func keyFilePath(path string) string {
	if path != "" {
		return path
	}
	return os.Getenv(sopsAgeKeyFileEnv)
}

// readKeyFile reads the key file at path (flag or environment), bounded.
func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--decryption-key-file: %w", err)
	}
	if fi.Size() > maxKeyFileBytes {
		return nil, fmt.Errorf("--decryption-key-file %s: %d bytes, at most %d", path, fi.Size(), maxKeyFileBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--decryption-key-file: %w", err)
	}
	return data, nil
}

// decryptionFromKeyFile is the render decryption of the key file at path
// (or $SOPS_AGE_KEY_FILE); nil when there is none.
func decryptionFromKeyFile(path string) (*render.Decryption, error) {
	path = keyFilePath(path)
	if path == "" {
		return nil, nil
	}
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return &render.Decryption{Keys: map[string][]byte{sopsfile.KeyEntryName(filepath.Base(path), data): data}}, nil
}

// keysFromFile parses the key file at path (or $SOPS_AGE_KEY_FILE).
func keysFromFile(path string) (*sopsfile.Keys, error) {
	path = keyFilePath(path)
	if path == "" {
		return nil, fmt.Errorf("no key to decrypt with: pass --decryption-key-file or set $%s", sopsAgeKeyFileEnv)
	}
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return sopsfile.ParseKeyFile(path, data)
}
