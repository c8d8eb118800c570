package sopsfile

import (
	"fmt"
	"strings"
	"time"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/version"
)

// DefaultEncryptedRegex encrypts the values of a Kubernetes Secret and
// leaves its apiVersion, kind and metadata readable, as Flux documents.
const DefaultEncryptedRegex = "^(data|stringData)$"

// EncryptOptions configure Encrypt.
type EncryptOptions struct {
	// AgeRecipients are the age public keys (age1…) the file is encrypted
	// for; at least one.
	AgeRecipients []string
	// EncryptedRegex selects the keys whose values are encrypted.
	// Default DefaultEncryptedRegex. Ignored for dotenv, INI and binary
	// files, whose values are all encrypted.
	EncryptedRegex string
	// EncryptAll encrypts every value (the sops CLI's default), e.g. for a
	// Helm values file; EncryptedRegex is then ignored.
	EncryptAll bool
}

// Encrypt encrypts plaintext, the file called name, for opts'
// recipients with SOPS (a new data key, AES-256-GCM values, a MAC) and
// returns it in SOPS's format for that file, readable by the sops CLI.
func Encrypt(name string, plaintext []byte, opts EncryptOptions) ([]byte, error) {
	if len(opts.AgeRecipients) == 0 {
		return nil, fmt.Errorf("encrypting %s: at least one age recipient is needed (--age)", name)
	}
	if opts.EncryptedRegex == "" {
		opts.EncryptedRegex = DefaultEncryptedRegex
	}
	format := FormatOf(name)
	store := format.store()
	branches, err := store.LoadPlainFile(plaintext)
	if err != nil {
		return nil, fmt.Errorf("encrypting %s: reading it as %s: %w", name, format, err)
	}
	if len(branches) == 0 {
		return nil, fmt.Errorf("encrypting %s: the file is empty", name)
	}
	if IsEncrypted(name, plaintext) {
		return nil, fmt.Errorf("encrypting %s: %w: it is already SOPS-encrypted", name, ErrFormat)
	}
	masterKeys, err := sopsage.MasterKeysFromRecipients(strings.Join(opts.AgeRecipients, ","))
	if err != nil {
		return nil, fmt.Errorf("encrypting %s: %w", name, err)
	}
	group := make(sops.KeyGroup, 0, len(masterKeys))
	for _, k := range masterKeys {
		group = append(group, k)
	}
	md := sops.Metadata{KeyGroups: []sops.KeyGroup{group}, Version: version.Version}
	if (format == FormatYAML || format == FormatJSON) && !opts.EncryptAll {
		md.EncryptedRegex = opts.EncryptedRegex
	}
	tree := &sops.Tree{Branches: branches, Metadata: md, FilePath: name}
	dataKey, errs := tree.GenerateDataKey()
	if len(errs) > 0 {
		return nil, fmt.Errorf("encrypting %s: %v", name, errs)
	}
	return seal(name, tree, dataKey)
}

// seal encrypts tree's values with dataKey, sets its MAC and emits it.
func seal(name string, tree *sops.Tree, dataKey []byte) ([]byte, error) {
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		return nil, fmt.Errorf("encrypting %s: %w", name, err)
	}
	tree.Metadata.LastModified = time.Now().UTC()
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("encrypting %s: the MAC: %w", name, err)
	}
	out, err := FormatOf(name).store().EmitEncryptedFile(*tree)
	if err != nil {
		return nil, fmt.Errorf("encrypting %s: %w", name, err)
	}
	return out, nil
}

// Reencrypt replaces the values of the SOPS file encrypted (called name)
// by those of plaintext, keeping its recipients and data key, as `sops
// edit` does. keys must decrypt the file.
func Reencrypt(name string, encrypted, plaintext []byte, k *Keys) (_ []byte, err error) {
	defer recoverFormat(name, &err)
	tree, err := open(name, encrypted, k)
	if err != nil {
		return nil, err
	}
	branches, err := FormatOf(name).store().LoadPlainFile(plaintext)
	if err != nil {
		return nil, fmt.Errorf("re-encrypting %s: reading the edited file: %w", name, err)
	}
	tree.Branches = branches
	return seal(name, tree, tree.Metadata.DataKey)
}
