package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/evidence"
	"github.com/keyless-cd/keyless/internal/ledger"
)

// Files an export writes into --output-dir.
const (
	evidencePackFile   = "evidence.json"
	evidenceReportFile = "report.md"
)

type evidenceExportFlags struct {
	publicKey string
	from, to  string
	namespace string
	auditLog  string
	outputDir string
	store     sinkFlags
	insecure  bool
}

func newEvidenceExportCommand(streams IOStreams) *cobra.Command {
	f := &evidenceExportFlags{}
	cmd := &cobra.Command{
		Use:   "export LEDGER --public-key FILE [--from TIME] [--to TIME] [-n NS] [--apiserver-audit-log FILE]",
		Short: "Write an auditor's pack (JSON and a Markdown report) of the ledger's changes",
		Long: `Verifies the whole ledger (chain and signatures, as evidence verify does; a broken ledger
is not exported) and writes into --output-dir:

  evidence.json  every change in the window: revision, who wrote (author), signed, approved
                 and applied it (the deployer identity), trigger, result, objects, window
                 overrides, the controls it is evidence for (DORA Art. 9(4)(e), SOC 2 CC8.1,
                 ISO/IEC 27001 A.8.32, HSLF-FS 2016:40 4:9, four eyes), and with an audit log
                 the API server's writes reconciled with them
  report.md      the same for a person: a summary, the changes, the writes the ledger does not
                 explain, the controls

With --apiserver-audit-log (the JSON log --audit-log-path writes), every persisted write in the
window and namespaces is matched with the record of the sync that made it (same deployer
identity and namespace, the object among the record's, recorded after the write); writes made
as a deployer that no record explains, and writes by anyone else, are listed one by one.
--from and --to take RFC 3339 times or dates (a date --to includes that whole day, UTC).`,
		Example: `  keyless evidence export ledger.jsonl --public-key ledger.pub --output-dir pack
  keyless evidence export ledger.jsonl --public-key ledger.pub --from 2026-10-01 --to 2026-12-31 \
    -n shop --apiserver-audit-log /var/log/kubernetes/audit.log --output-dir q4-shop`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEvidenceExport(cmd.Context(), streams, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.publicKey, "public-key", "", "the controller's ed25519 public key (PKIX PEM) (required)")
	fl.StringVar(&f.from, "from", "", "first time included (RFC 3339 or YYYY-MM-DD; default the ledger's start)")
	fl.StringVar(&f.to, "to", "", "last time included (RFC 3339, or YYYY-MM-DD for that whole day; default now)")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "only this namespace's Applications (and writes)")
	fl.StringVar(&f.auditLog, "apiserver-audit-log", "", "the API server's JSON audit log, to reconcile every write in the window with a record")
	fl.StringVar(&f.outputDir, "output-dir", "evidence", "folder the pack is written to (created; "+evidencePackFile+" and "+evidenceReportFile+")")
	f.store.addFlags(fl, "")
	fl.BoolVar(&f.insecure, "allow-insecure-http", false, "let --endpoint be plain http:// (loopback tests only)")
	return cmd
}

// parseEvidenceTime reads an RFC 3339 time or a date; a date as the end of
// a window (end) is the end of that day.
func parseEvidenceTime(flag, v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time (2026-12-31T23:59:59Z) or a date (2026-12-31)", flag, v)
	}
	if end {
		return d.Add(24*time.Hour - time.Nanosecond), nil
	}
	return d, nil
}

func runEvidenceExport(ctx context.Context, streams IOStreams, f *evidenceExportFlags, path string) error {
	pub, err := ledgerPublicKey(f.publicKey)
	if err != nil {
		return err
	}
	from, err := parseEvidenceTime("from", f.from, false)
	if err != nil {
		return err
	}
	to, err := parseEvidenceTime("to", f.to, true)
	if err != nil {
		return err
	}
	if !to.IsZero() && to.Before(from) {
		return fmt.Errorf("--to %s is before --from %s", f.to, f.from)
	}
	pack := evidence.NewPack(path, evidence.Options{From: from, To: to, Namespace: f.namespace})
	file, err := openLedger(ctx, path, f.store, f.insecure)
	if err != nil {
		return err
	}
	var addErr error
	last, n, err := ledger.VerifyEach(file, pub, func(r ledger.Record) {
		if addErr == nil {
			addErr = pack.Add(r)
		}
	})
	_ = file.Close()
	if err != nil {
		return fmt.Errorf("%s does not verify, so nothing is exported (keep it as evidence; evidence verify names the broken record): %d record(s) verified before: %w", path, n, err)
	}
	if addErr != nil {
		return addErr
	}
	pack.Verified(n, last)
	if f.auditLog != "" {
		if err := reconcileAuditLog(pack, f.auditLog, from, to); err != nil {
			return err
		}
	}
	if err := writePack(f.outputDir, pack); err != nil {
		return err
	}
	return printPackSummary(streams, f.outputDir, pack)
}

func reconcileAuditLog(pack *evidence.Pack, path string, from, to time.Time) error {
	log, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--apiserver-audit-log: %w", err)
	}
	defer func() { _ = log.Close() }()
	writes, skipped, err := evidence.ReadAuditLog(log, pack.Namespace, from, to)
	if err != nil {
		return fmt.Errorf("--apiserver-audit-log %s: %w", path, err)
	}
	pack.Reconcile(path, writes, skipped)
	return nil
}

func writePack(dir string, pack *evidence.Pack) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("--output-dir: %w", err)
	}
	data, err := json.MarshalIndent(pack, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, evidencePackFile), append(data, '\n'), 0o640); err != nil {
		return err
	}
	report, err := os.OpenFile(filepath.Join(dir, evidenceReportFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if err := evidence.WriteMarkdown(report, pack); err != nil {
		_ = report.Close()
		return err
	}
	return report.Close()
}

func printPackSummary(streams IOStreams, dir string, pack *evidence.Pack) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d record(s) verified; %d change(s) exported to %s and %s\n", pack.Ledger.File, pack.Ledger.Records, len(pack.Changes),
		filepath.Join(dir, evidencePackFile), filepath.Join(dir, evidenceReportFile))
	if a := pack.Audit; a != nil {
		fmt.Fprintf(&b, "audit log %s: %d write(s), %d matched with a record, %d made as a deployer with no record, %d by other identities\n",
			a.Log, a.Writes, a.Matched, len(a.WithoutRecord), len(a.Outside))
	}
	_, err := fmt.Fprint(streams.Out, b.String())
	return err
}
