package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/ledger"
)

// maxKeyFile bounds a key file.
const maxKeyFile = 64 << 10

// readLedgerKey reads --ledger-key-file when --ledger-file is set (both
// or neither).
func readLedgerKey(ledgerFile, keyFile string) (ed25519.PrivateKey, error) {
	switch {
	case ledgerFile == "" && keyFile == "":
		return nil, nil
	case ledgerFile == "" || keyFile == "":
		return nil, errors.New("--ledger-file and --ledger-key-file go together: the ledger's records are signed")
	}
	data, err := readSmallFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--ledger-key-file: %w", err)
	}
	key, err := ledger.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("--ledger-key-file %s: %w", keyFile, err)
	}
	return key, nil
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxKeyFile)
	}
	return data, nil
}

type evidenceVerifyFlags struct {
	publicKey string
	store     sinkFlags
	insecure  bool
}

func newEvidenceCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "Check the controller's tamper-evident ledger of changes, export an auditor's pack",
		Long: `The controller appends a signed, hash-chained record of every sync to its --ledger-file.
keyless evidence verify checks a copy of it: every record's hash, its signature with the
controller's public key, its sequence and its link to the record before, naming the first
record that was edited, removed or moved. keyless evidence export verifies it the same way
and writes an auditor's pack: each change with who wrote, signed, approved and applied it,
mapped to the change-management controls, reconciled with the API server's audit log.`,
		Example: `  keyless evidence verify ledger.jsonl --public-key ledger.pub
  keyless evidence export ledger.jsonl --public-key ledger.pub --from 2026-10-01 --to 2026-12-31 \
    -n shop --apiserver-audit-log audit.log --output-dir q4-shop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	f := &evidenceVerifyFlags{}
	verify := &cobra.Command{
		Use:   "verify LEDGER --public-key FILE",
		Short: "Verify a ledger's chain and signatures, naming the first broken record",
		Example: `  # the controller's public key, from its private key
  openssl pkey -in ledger.key -pubout > ledger.pub
  keyless evidence verify /var/lib/keyless/ledger.jsonl --public-key ledger.pub

  # the copy the controller shipped to an object store (--ledger-sink)
  keyless evidence verify s3://audit/cluster-a/ledger --endpoint https://s3.example.com --public-key ledger.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEvidenceVerify(cmd.Context(), streams, f, args[0])
		},
	}
	verify.Flags().StringVar(&f.publicKey, "public-key", "", "the controller's ed25519 public key (PKIX PEM) (required)")
	f.store.addFlags(verify.Flags(), "")
	verify.Flags().BoolVar(&f.insecure, "allow-insecure-http", false, "let --endpoint be plain http:// (loopback tests only)")
	cmd.AddCommand(verify, newEvidenceExportCommand(streams))
	return cmd
}

// ledgerPublicKey reads --public-key.
func ledgerPublicKey(path string) (ed25519.PublicKey, error) {
	if path == "" {
		return nil, errors.New("--public-key is required: the ledger's signatures are checked with the controller's public key")
	}
	data, err := readSmallFile(path)
	if err != nil {
		return nil, fmt.Errorf("--public-key: %w", err)
	}
	pub, err := ledger.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("--public-key %s: %w", path, err)
	}
	return pub, nil
}

func runEvidenceVerify(ctx context.Context, streams IOStreams, f *evidenceVerifyFlags, path string) error {
	pub, err := ledgerPublicKey(f.publicKey)
	if err != nil {
		return err
	}
	file, err := openLedger(ctx, path, f.store, f.insecure)
	if err != nil {
		return err
	}
	defer func() { _ = file.Close() }()
	last, n, err := ledger.Verify(file, pub)
	if err != nil {
		return fmt.Errorf("%s: %d record(s) verified before: %w", path, n, err)
	}
	if last == nil {
		_, err = fmt.Fprintf(streams.Out, "%s: empty ledger\n", path)
		return err
	}
	_, err = fmt.Fprintf(streams.Out, "%s: %d record(s) verified; the last is %d (%s, %s/%s %s)\n", path, n, last.Seq,
		last.Time.UTC().Format(time.RFC3339), last.Namespace, last.App, last.Result)
	return err
}
