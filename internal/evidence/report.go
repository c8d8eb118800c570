package evidence

import (
	"fmt"
	"io"
	"strings"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/ledger"
)

// maxReportWrites bounds the writes listed one by one in each table of
// the report (the JSON pack holds them all).
const maxReportWrites = 500

// WriteMarkdown writes p as a report a person reads: what was verified,
// a summary, every change with who wrote, signed, approved and applied
// it, the writes the ledger does not explain and the controls.
func WriteMarkdown(w io.Writer, p *Pack) error {
	b := &strings.Builder{}
	scope := "all managed namespaces"
	if p.Namespace != "" {
		scope = "namespace " + p.Namespace
	}
	fmt.Fprintf(b, "# Change evidence: %s, %s\n\n", scope, window(p.From, p.To))
	fmt.Fprintf(b, "Generated %s by `keyless evidence export` from `%s`: all %d record(s) of the ledger verified (hash chain and the controller's signatures) before export; the last is record %d, hash `%s`.\n\n",
		p.GeneratedAt.Format(time.RFC3339), cell(p.Ledger.File), p.Ledger.Records, p.Ledger.LastSeq, p.Ledger.LastHash)

	b.WriteString("## Summary\n\n")
	results, approved, overrides, pauses := map[string]int{}, 0, 0, 0
	for _, c := range p.Changes {
		if c.Kind == ledger.KindPause {
			pauses++
			continue
		}
		if c.Kind == ledger.KindOverride || c.Kind == ledger.KindApproval {
			continue // counted with its sync's record (windowOverride, approvers)
		}
		results[c.Result]++
		if c.ApprovedBy != "" || len(c.Approvers) > 0 {
			approved++
		}
		if c.WindowOverride != "" {
			overrides++
		}
	}
	fmt.Fprintf(b, "- %d change(s) in the window:", len(p.Changes))
	for _, r := range []string{kv1.SyncResultSucceeded, kv1.SyncResultFailed} {
		fmt.Fprintf(b, " %d %s,", results[r], strings.ToLower(r))
	}
	fmt.Fprintf(b, " %d approved by a person, %d through a closed sync window, %d pause(s) of self-heal.\n", approved, overrides, pauses)
	if a := p.Audit; a != nil {
		fmt.Fprintf(b, "- API server audit log `%s`: %d write(s); %d made by a deployer during a recorded sync that names the object; **%d made as a deployer with no record**; %d by other identities (people, other controllers) — listed below.\n",
			cell(a.Log), a.Writes, a.Matched, len(a.WithoutRecord), len(a.Outside))
	} else {
		b.WriteString("- No API server audit log given (`--apiserver-audit-log`): the writes were not reconciled.\n")
	}

	b.WriteString("\n## Changes\n\n")
	b.WriteString("| # | time (UTC) | application | revision | written by | signed by | approved by | applied as | trigger | result | objects | writes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range p.Changes {
		result := c.Result
		switch c.Kind {
		case ledger.KindOverride:
			result = "sync window " + c.Window + " overridden by " + c.By + ": " + c.Reason
		case ledger.KindPause:
			result = "self-heal paused until " + c.Until.UTC().Format(time.RFC3339) + " by " + c.By + ": " + c.Reason
		case ledger.KindApproval:
			result = "approved at the forge in " + c.PullRequest
		}
		if c.Error != "" {
			result += ": " + c.Error
		}
		if c.WindowOverride != "" {
			result += " (window overridden: " + c.WindowOverride + ")"
		}
		fmt.Fprintf(b, "| %d | %s | %s/%s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", c.Seq, c.Time.Format("2006-01-02 15:04:05"),
			cell(c.Namespace), cell(c.App), cell(kv1.ShortSHA(c.Revision)), dash(c.WrittenBy), dash(c.SignedBy), dash(approvedBy(c)), dash(c.AppliedAs),
			dash(c.Trigger), dash(result), dash(strings.Join(c.Objects, ", ")), len(c.Writes))
	}
	if a := p.Audit; a != nil {
		writesTable(b, "Writes made as a deployer that no record explains", "A sync missing from this ledger, or a record removed from this copy of it.", a.WithoutRecord)
		writesTable(b, "Writes outside keyless", "Made by people or other controllers (kube-controller-manager updating the objects it manages included): account for each.", a.Outside)
	}

	b.WriteString("\n## Controls\n\n| control | requirement | evidence in this pack |\n|---|---|---|\n")
	for _, c := range p.Controls {
		fmt.Fprintf(b, "| %s (%s) | %s | %s |\n", c.ID, cell(c.Regulation), cell(c.Requirement), cell(c.Evidence))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writesTable(b *strings.Builder, title, about string, writes []Write) {
	fmt.Fprintf(b, "\n## %s (%d)\n\n%s\n\n", title, len(writes), about)
	if len(writes) == 0 {
		b.WriteString("None.\n")
		return
	}
	b.WriteString("| time (UTC) | identity | verb | object | audit ID |\n|---|---|---|---|---|\n")
	for i, w := range writes {
		if i == maxReportWrites {
			fmt.Fprintf(b, "\n… and %d more (all are in the JSON pack).\n", len(writes)-i)
			return
		}
		who := w.User
		if w.As != "" {
			who = w.As + " (as, by " + w.User + ")"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s %s/%s | %s |\n", w.Time.Format("2006-01-02 15:04:05"), cell(who), cell(w.Verb),
			cell(w.Resource), cell(w.Namespace), cell(w.Name), cell(w.AuditID))
	}
}

func window(from, to time.Time) string {
	switch {
	case from.IsZero() && to.IsZero():
		return "the whole ledger"
	case to.IsZero():
		return "from " + from.UTC().Format(time.RFC3339)
	case from.IsZero():
		return "until " + to.UTC().Format(time.RFC3339)
	}
	return from.UTC().Format(time.RFC3339) + " to " + to.UTC().Format(time.RFC3339)
}

// cell makes s safe in a Markdown table cell: no line breaks, pipes
// escaped, no HTML.
func cell(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;", "`", "'")
	return r.Replace(s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return cell(s)
}

// approvedBy names who approved a change: its forge approvers (and the
// request), and the approver of its out-of-namespace objects.
func approvedBy(c Change) string {
	var parts []string
	if len(c.Approvers) > 0 {
		parts = append(parts, strings.Join(c.Approvers, ", ")+" ("+c.PullRequest+")")
	}
	if c.ApprovedBy != "" {
		parts = append(parts, c.ApprovedBy+" (out-of-namespace objects)")
	}
	return strings.Join(parts, "; ")
}
