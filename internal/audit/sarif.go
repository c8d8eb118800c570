package audit

import (
	"fmt"
	"io"
	"sort"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
)

// SARIF levels and GitHub security-severity scores for each severity.
var (
	sarifLevel    = map[Severity]string{Low: "note", Medium: "warning", High: "error", Critical: "error"}
	sarifSecScore = map[Severity]string{Low: "3.0", Medium: "5.5", High: "8.0", Critical: "9.5"}
)

// WriteSARIF writes findings as a SARIF 2.1.0 log, one run of the keyless
// tool, so code-scanning UIs (GitHub, GitLab) show them inline. Every rule
// that fired is described with its why and fix; repository paths are
// relative to %SRCROOT%, cluster findings name the object (kind/ns/name).
func WriteSARIF(w io.Writer, findings []Finding, toolVersion string) error {
	run := sarif.NewRunWithInformationURI("keyless", "https://github.com/keyless-cd/keyless/blob/main/docs/audit.md")
	run.Tool.Driver.WithVersion(toolVersion)
	ids := map[string]bool{}
	for _, f := range findings {
		ids[f.Rule] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	for _, id := range sorted {
		r := Rules[id]
		props := sarif.NewPropertyBag()
		props.Add("security-severity", sarifSecScore[r.Severity])
		props.Add("tags", []string{"security", "kubernetes", "ci-cd"})
		run.AddRule(id).
			WithName(id).
			WithShortDescription(sarif.NewMultiformatMessageString().WithText(r.Why)).
			WithHelp(sarif.NewMultiformatMessageString().WithText("Fix: " + r.Fix)).
			WithHelpURI("https://github.com/keyless-cd/keyless/blob/main/docs/audit.md#" + id).
			WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel(sarifLevel[r.Severity])).
			WithProperties(props)
	}
	for _, f := range findings {
		loc := sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewSimpleArtifactLocation(f.File).WithURIBaseID("%SRCROOT%"))
		if f.Line > 0 {
			loc.WithRegion(sarif.NewSimpleRegion(f.Line, f.Line))
		}
		msg := f.What
		if f.Commit != "" {
			msg = fmt.Sprintf("%s (in commit %s)", f.What, f.Commit)
		}
		res := run.CreateResultForRule(f.Rule).
			WithLevel(sarifLevel[f.Severity]).
			WithMessage(sarif.NewTextMessage(msg + ". Fix: " + f.Fix)).
			AddLocation(sarif.NewLocationWithPhysicalLocation(loc))
		if f.Commit != "" {
			props := sarif.NewPropertyBag()
			props.Add("commit", f.Commit)
			res.WithProperties(props)
		}
	}
	rep := sarif.NewReport()
	rep.AddRun(run)
	return rep.PrettyWrite(w)
}
