package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/sopsfile"
)

// maxSecretFileBytes bounds a file encrypted, decrypted or edited.
const maxSecretFileBytes = 10 << 20

func newSecretCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Encrypt, decrypt and edit SOPS files for Git, without the sops CLI",
		Long: `Work with SOPS-encrypted files (age or OpenPGP), the format Flux and the sops
CLI read and write: commit the encrypted file, give the Application
spec.decryption with the team's age key in a Secret of its namespace, and the
controller decrypts it in memory just before the apply. Files written here are
read by "sops --decrypt", and files "sops --encrypt" wrote are read here.

The format follows the file name as sops does: *.yaml/*.yml, *.json, *.env
(dotenv), *.ini, anything else binary.`,
		Example: `  age-keygen -o team.agekey          # Debian's age package; any age key works
  keyless secret encrypt --age age1… secret.yaml > secret.enc.yaml
  keyless secret decrypt --decryption-key-file team.agekey secret.enc.yaml
  EDITOR=vi keyless secret edit --decryption-key-file team.agekey secret.enc.yaml`,
	}
	cmd.AddCommand(newSecretEncryptCommand(streams), newSecretDecryptCommand(streams), newSecretEditCommand(streams))
	return cmd
}

type secretEncryptFlags struct {
	age            []string
	encryptedRegex string
	inPlace        bool
	output         string
}

func newSecretEncryptCommand(streams IOStreams) *cobra.Command {
	f := &secretEncryptFlags{}
	cmd := &cobra.Command{
		Use:   "encrypt --age RECIPIENT FILE",
		Short: "Encrypt FILE with SOPS for age recipients",
		Long: `Encrypt FILE for one or more age recipients (public keys, age1…) and print the
SOPS file, or write it with --in-place or -o. For YAML and JSON only the values
of keys matching --encrypted-regex are encrypted (default ^(data|stringData)$:
a Secret's values, its kind and name stay readable, as Flux documents);
--encrypted-regex="" encrypts every value, e.g. for a Helm values file. A file
that is already SOPS-encrypted is refused.`,
		Example: `  keyless secret encrypt --age age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs8sx3l5 deploy/db-secret.yaml --in-place
  keyless secret encrypt --age "$TEAM_AGE" --encrypted-regex="" values/secrets.yaml -o values/secrets.enc.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			regexSet := cmd.Flags().Changed("encrypted-regex")
			return runSecretEncrypt(streams, f, args[0], regexSet)
		},
	}
	cmd.Flags().StringArrayVar(&f.age, "age", nil, "age recipient (public key) to encrypt for (repeatable, or comma-separated)")
	cmd.Flags().StringVar(&f.encryptedRegex, "encrypted-regex", sopsfile.DefaultEncryptedRegex, `encrypt the values of keys matching this (YAML/JSON); "" encrypts every value`)
	addSecretOutputFlags(cmd, &f.inPlace, &f.output)
	_ = cmd.MarkFlagRequired("age")
	return cmd
}

func addSecretOutputFlags(cmd *cobra.Command, inPlace *bool, output *string) {
	cmd.Flags().BoolVarP(inPlace, "in-place", "i", false, "write the result over FILE")
	cmd.Flags().StringVarP(output, "output", "o", "", "write the result to this file (default standard output)")
}

func runSecretEncrypt(streams IOStreams, f *secretEncryptFlags, file string, regexSet bool) error {
	plain, err := readSecretFile(file)
	if err != nil {
		return err
	}
	var recipients []string
	for _, a := range f.age {
		for _, r := range strings.Split(a, ",") {
			if r = strings.TrimSpace(r); r != "" {
				recipients = append(recipients, r)
			}
		}
	}
	opts := sopsfile.EncryptOptions{AgeRecipients: recipients, EncryptedRegex: f.encryptedRegex}
	if regexSet && f.encryptedRegex == "" {
		opts.EncryptAll = true
	}
	enc, err := sopsfile.Encrypt(filepath.Base(file), plain, opts)
	if err != nil {
		return err
	}
	return writeSecretOutput(streams, file, f.inPlace, f.output, enc)
}

type secretDecryptFlags struct {
	keyFile string
	output  string
}

func newSecretDecryptCommand(streams IOStreams) *cobra.Command {
	f := &secretDecryptFlags{}
	cmd := &cobra.Command{
		Use:   "decrypt FILE",
		Short: "Print the plaintext of a SOPS file",
		Long: `Decrypt FILE with the key file (age identities or an armored OpenPGP private
key; default $SOPS_AGE_KEY_FILE), check its MAC, and print the plaintext (or
write it with -o, mode 0600). The keys are never read from anywhere else.`,
		Example: `  keyless secret decrypt --decryption-key-file team.agekey deploy/db-secret.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSecretDecrypt(streams, f, args[0])
		},
	}
	cmd.Flags().StringVar(&f.keyFile, "decryption-key-file", "", "key file to decrypt with (default $"+sopsAgeKeyFileEnv+")")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "write the plaintext to this file, mode 0600 (default standard output)")
	return cmd
}

func runSecretDecrypt(streams IOStreams, f *secretDecryptFlags, file string) error {
	_, _, plain, err := openSecretFile(f.keyFile, file)
	if err != nil {
		return err
	}
	return writeSecretOutput(streams, file, false, f.output, plain)
}

// openSecretFile reads the SOPS file and decrypts it with the key file (or
// $SOPS_AGE_KEY_FILE), returning the keys, the ciphertext and the plaintext.
func openSecretFile(keyFile, file string) (*sopsfile.Keys, []byte, []byte, error) {
	keys, err := keysFromFile(keyFile)
	if err != nil {
		return nil, nil, nil, err
	}
	enc, err := readSecretFile(file)
	if err != nil {
		return nil, nil, nil, err
	}
	plain, err := sopsfile.Decrypt(file, enc, keys)
	if err != nil {
		return nil, nil, nil, err
	}
	return keys, enc, plain, nil
}

type secretEditFlags struct {
	keyFile string
}

func newSecretEditCommand(streams IOStreams) *cobra.Command {
	f := &secretEditFlags{}
	cmd := &cobra.Command{
		Use:   "edit FILE",
		Short: "Edit a SOPS file in $EDITOR and re-encrypt it for the same recipients",
		Long: `Decrypt FILE into a private temporary file (mode 0600, in a fresh 0700
directory, removed afterwards), open it in $VISUAL or $EDITOR (default vi), then
re-encrypt the edited content with the file's own data key and recipients and
write it back over FILE, as "sops edit" does. Nothing is written when the
content did not change or the editor fails.`,
		Example: `  EDITOR=nano keyless secret edit --decryption-key-file team.agekey deploy/db-secret.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSecretEdit(streams, f, args[0])
		},
	}
	cmd.Flags().StringVar(&f.keyFile, "decryption-key-file", "", "key file to decrypt with (default $"+sopsAgeKeyFileEnv+")")
	return cmd
}

func runSecretEdit(streams IOStreams, f *secretEditFlags, file string) error {
	keys, enc, plain, err := openSecretFile(f.keyFile, file)
	if err != nil {
		return err
	}
	edited, err := editInTempFile(streams, filepath.Base(file), plain)
	if err != nil {
		return err
	}
	if bytes.Equal(edited, plain) {
		_, _ = fmt.Fprintf(streams.ErrOut, "%s: no change\n", file)
		return nil
	}
	out, err := sopsfile.Reencrypt(file, enc, edited, keys)
	if err != nil {
		return err
	}
	if err := writeFileKeepingMode(file, out); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(streams.ErrOut, "%s: re-encrypted\n", file)
	return nil
}

// editInTempFile opens plain in the user's editor in a private temporary
// file (named like the original, so the editor picks its syntax) and
// returns what was saved; the directory is removed whatever happens.
func editInTempFile(streams IOStreams, name string, plain []byte) ([]byte, error) {
	dir, err := os.MkdirTemp("", "keyless-secret-edit-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, plain, 0o600); err != nil {
		return nil, err
	}
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	fields := strings.Fields(editor)
	cmd := exec.Command(fields[0], append(fields[1:], path)...) //nolint:gosec // the user's own editor, as sops and git run it
	cmd.Stdin, cmd.Stdout, cmd.Stderr = streams.In, streams.Out, streams.ErrOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("editor %s: %w (nothing written)", fields[0], err)
	}
	return os.ReadFile(path)
}

func readSecretFile(file string) ([]byte, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxSecretFileBytes {
		return nil, fmt.Errorf("%s: %d bytes, at most %d", file, fi.Size(), maxSecretFileBytes)
	}
	return os.ReadFile(file)
}

// writeSecretOutput writes data over file (inPlace), to output, or to
// standard output.
func writeSecretOutput(streams IOStreams, file string, inPlace bool, output string, data []byte) error {
	switch {
	case inPlace && output != "":
		return errors.New("--in-place and --output exclude each other")
	case inPlace:
		return writeFileKeepingMode(file, data)
	case output != "":
		return os.WriteFile(output, data, 0o600)
	}
	_, err := io.Copy(streams.Out, bytes.NewReader(data))
	return err
}

// writeFileKeepingMode replaces file's content through a temporary file in
// its directory, so an interrupted write leaves the old file whole.
func writeFileKeepingMode(file string, data []byte) error {
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(file); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
