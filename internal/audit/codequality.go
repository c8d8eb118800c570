package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
)

// codeQualitySeverity maps keyless severities to GitLab Code Quality ones.
var codeQualitySeverity = map[Severity]string{Low: "minor", Medium: "major", High: "critical", Critical: "blocker"}

// CodeQualityIssue is one entry of a GitLab Code Quality report (the subset
// of the Code Climate issue format GitLab reads).
type CodeQualityIssue struct {
	Description string              `json:"description"`
	CheckName   string              `json:"check_name"`
	Fingerprint string              `json:"fingerprint"`
	Severity    string              `json:"severity"`
	Location    CodeQualityLocation `json:"location"`
}

// CodeQualityLocation is a file and its first line.
type CodeQualityLocation struct {
	Path  string `json:"path"`
	Lines struct {
		Begin int `json:"begin"`
	} `json:"lines"`
}

// WriteCodeQuality writes findings as a GitLab Code Quality report
// (`artifacts: reports: codequality:`), which GitLab shows in the merge
// request widget and inline in the diff on every tier. The fingerprint
// leaves out the line number, so a finding that only moved is not shown as
// fixed and new again; identical findings in one file are told apart by
// their order.
func WriteCodeQuality(w io.Writer, findings []Finding) error {
	issues := make([]CodeQualityIssue, 0, len(findings))
	seen := map[string]int{}
	for _, f := range findings {
		key := f.Rule + "\x00" + f.File + "\x00" + f.What + "\x00" + f.Commit
		seen[key]++
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d", key, seen[key])))
		desc := fmt.Sprintf("%s: %s. Why: %s. Fix: %s", f.Rule, f.What, f.Why, f.Fix)
		if f.Commit != "" {
			desc = fmt.Sprintf("%s: %s (in commit %s). Why: %s. Fix: %s", f.Rule, f.What, f.Commit, f.Why, f.Fix)
		}
		is := CodeQualityIssue{
			Description: desc, CheckName: "keyless/" + f.Rule, Fingerprint: hex.EncodeToString(sum[:16]),
			Severity: codeQualitySeverity[f.Severity], Location: CodeQualityLocation{Path: f.File},
		}
		is.Location.Lines.Begin = max(f.Line, 1)
		issues = append(issues, is)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(issues); err != nil {
		return fmt.Errorf("writing the code quality report: %w", err)
	}
	return nil
}
