package preview

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/keyless-cd/keyless/internal/engine"
)

// MarkdownLimit bounds the Markdown report so that it fits one merge-request
// comment (GitHub takes 65536 characters): diffs past it are left out, with
// a line saying so.
const MarkdownLimit = 60000

// The output formats of WriteReport.
const (
	FormatText     = "text"
	FormatMarkdown = "markdown"
	FormatJSON     = "json"
)

// Formats lists the formats WriteReport accepts.
var Formats = []string{FormatText, FormatMarkdown, FormatJSON}

// WriteReport writes r in format (FormatText, FormatMarkdown or FormatJSON).
func WriteReport(w io.Writer, r *Report, format string) error {
	switch format {
	case FormatText, "":
		return writeText(w, r)
	case FormatMarkdown:
		return writeMarkdown(w, r)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return fmt.Errorf("unknown format %q: want one of %s", format, strings.Join(Formats, ", "))
}

var actionMark = map[Action]string{Added: "+", Changed: "~", Removed: "-"}

// summary is "1 added, 2 changed, 0 removed" (with a note on what removal
// means for the Application).
func (a *AppReport) summary() string {
	s := fmt.Sprintf("%d added, %d changed, %d removed", a.Count(Added), a.Count(Changed), a.Count(Removed))
	if a.Count(Removed) > 0 && !a.Prune {
		s += " (left in the cluster: prune is off)"
	}
	return s
}

func (a *AppReport) headline() string {
	switch a.State {
	case AppFailed:
		return "does not render at head"
	case AppUnchanged:
		return "no change"
	case AppAdded:
		return "new Application: " + a.summary()
	case AppRemoved:
		return "Application removed from the repository: " + a.summary()
	}
	return a.summary()
}

func writeText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "keyless preview: %s (%s) → %s (%s)\n", r.Base.Revision, r.Base.Short(), r.Head.Revision, r.Head.Short())
	for _, a := range r.Applications {
		fmt.Fprintf(&b, "\nApplication %s (%s, path %s): %s\n", a.Application, a.Source, a.Path, a.headline())
		if a.HeadError != "" {
			fmt.Fprintf(&b, "  error: %s\n", a.HeadError)
		}
		if a.InvalidSpec != "" {
			fmt.Fprintf(&b, "  error: the controller would refuse the Application (InvalidSpec): %s\n", a.InvalidSpec)
		}
		if a.BaseError != "" {
			fmt.Fprintf(&b, "  warning: did not render at base, its objects show as added: %s\n", a.BaseError)
		}
		if len(a.Refused) > 0 {
			fmt.Fprintf(&b, "  refused: %s:\n", a.refusedHeadline())
			for _, r := range a.Refused {
				fmt.Fprintf(&b, "  ! %s\n", r.Line())
			}
		}
		for _, c := range a.Changes {
			fmt.Fprintf(&b, "%s %s%s%s\n", actionMark[c.Action], c.Ref(), paren(c.Source), bracket(c.Sync))
			b.WriteString(c.Diff)
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "\nskipped %s: %s\n", s.Application, s.Reason)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", warn)
	}
	fmt.Fprintf(&b, "\n%s\n", r.totals())
	_, err := io.WriteString(w, b.String())
	return err
}

// totals is "2 Applications: 1 changed, 1 unchanged".
func (r *Report) totals() string {
	counts := map[AppState]int{}
	for _, a := range r.Applications {
		counts[a.State]++
	}
	var parts []string
	for _, s := range []AppState{AppFailed, AppAdded, AppChanged, AppRemoved, AppUnchanged} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if len(r.Skipped) > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", len(r.Skipped)))
	}
	if len(parts) == 0 {
		return "no Application found"
	}
	if n := r.refusing(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d with objects the controller would refuse", n))
	}
	return fmt.Sprintf("%d Applications: %s", len(r.Applications), strings.Join(parts, ", "))
}

// refusing counts the Applications whose head render holds refused objects.
func (r *Report) refusing() int {
	n := 0
	for _, a := range r.Applications {
		if len(a.Refused) > 0 {
			n++
		}
	}
	return n
}

// refusedHeadline is "2 objects the controller would refuse; it would apply
// nothing of this render".
func (a *AppReport) refusedHeadline() string {
	return fmt.Sprintf("%d objects the controller would refuse; it would apply nothing of this render", len(a.Refused))
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "  (" + s + ")"
}

func bracket(s string) string {
	if s == "" {
		return ""
	}
	return "  [" + s + "]"
}

// writeMarkdown writes a comment-sized summary: a table of Applications,
// then per object a collapsible diff, while the comment stays under
// MarkdownLimit. Every value from Git is escaped; diffs sit in a code fence
// longer than any backtick run they hold.
func writeMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, "### keyless preview: <code>%s</code> → <code>%s</code>\n\n", esc(r.Base.Short()), esc(r.Head.Short()))
	fmt.Fprintf(&b, "%s\n\n", esc(r.totals()))
	if len(r.Applications) > 0 {
		b.WriteString("| Application | Result | Added | Changed | Removed |\n|---|---|---:|---:|---:|\n")
		for _, a := range r.Applications {
			result := string(a.State)
			if a.State == AppFailed {
				result = "**failed**"
			}
			if a.InvalidSpec != "" {
				result += ", **invalid spec**"
			}
			if len(a.Refused) > 0 {
				result += fmt.Sprintf(", **%d refused**", len(a.Refused))
			}
			fmt.Fprintf(&b, "| <code>%s</code> | %s | %d | %d | %d |\n", cell(a.Application), result, a.Count(Added), a.Count(Changed), a.Count(Removed))
		}
		b.WriteString("\n")
	}
	omitted := 0
	for _, a := range r.Applications {
		if a.HeadError != "" {
			fmt.Fprintf(&b, "**<code>%s</code> does not render at head:**\n%s\n", esc(a.Application), fenced(a.HeadError))
		}
		if a.InvalidSpec != "" {
			fmt.Fprintf(&b, "**<code>%s</code>: the controller would refuse the Application (InvalidSpec):**\n%s\n", esc(a.Application), fenced(a.InvalidSpec))
		}
		if a.BaseError != "" {
			fmt.Fprintf(&b, "<code>%s</code> did not render at base, its objects show as added:\n%s\n", esc(a.Application), fenced(a.BaseError))
		}
		if len(a.Refused) > 0 {
			fmt.Fprintf(&b, "**<code>%s</code>: %s:**\n\n", esc(a.Application), a.refusedHeadline())
			for i, ref := range a.Refused {
				if b.Len() > MarkdownLimit/2 {
					fmt.Fprintf(&b, "- _and %d more: run `keyless preview --base %s` for all of them._\n", len(a.Refused)-i, esc(r.Base.Short()))
					break
				}
				fmt.Fprintf(&b, "- <code>%s</code>%s: %s%s\n", esc(ref.Object.String()), esc(paren(nsOf(ref))), esc(ref.Reason), esc(paren(ref.Source)))
			}
			b.WriteString("\n")
		}
		for _, c := range a.Changes {
			block := fmt.Sprintf("<details><summary><code>%s</code>: %s <code>%s</code>%s</summary>\n\n%s\n</details>\n\n",
				esc(a.Application), c.Action, esc(c.Ref()), esc(bracket(c.Sync)), fencedAs("diff", c.Diff))
			if b.Len()+len(block) > MarkdownLimit {
				omitted++
				continue
			}
			b.WriteString(block)
		}
	}
	if omitted > 0 {
		fmt.Fprintf(&b, "_%d diffs left out to keep this comment short: run `keyless preview --base %s` for all of them._\n\n", omitted, esc(r.Base.Short()))
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "- skipped <code>%s</code>: %s\n", esc(s.Application), esc(s.Reason))
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(&b, "- warning: %s\n", esc(warn))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// nsOf is "namespace ns" when the refused object names a namespace.
func nsOf(r engine.Refusal) string {
	if r.Object.Namespace == "" {
		return ""
	}
	return "namespace " + r.Object.Namespace
}

// cell escapes s for a table cell: HTML, and the pipe that would end it.
func cell(s string) string { return strings.ReplaceAll(html.EscapeString(s), "|", "&#124;") }

func fenced(s string) string { return fencedAs("", s) }

// fencedAs puts s in a code fence of backticks longer than any run in s,
// so nothing in s can close it.
func fencedAs(lang, s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	return fence + lang + "\n" + strings.TrimSuffix(s, "\n") + "\n" + fence + "\n"
}
