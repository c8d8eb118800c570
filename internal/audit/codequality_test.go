package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestWriteCodeQuality: the repository fixture's findings, written as a
// GitLab Code Quality report, carry what GitLab's merge request widget needs
// (description, check name, a unique fingerprint, one of GitLab's
// severities, a path and a line ≥ 1), and a finding that only moved keeps
// its fingerprint.
func TestWriteCodeQuality(t *testing.T) {
	findings, err := ScanRepo("testdata/repo", ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) < 5 {
		t.Fatalf("the fixture gave only %d findings", len(findings))
	}
	dup := Finding{Rule: "KL001", Severity: Critical, File: "k/kubeconfig", Line: 3, What: "kubeconfig with a token", Why: "w", Fix: "f"}
	moved := dup
	moved.Line = 9
	findings = append(findings, dup, moved, Finding{Rule: "KL101", Severity: High, File: "secret/ci/ci-token", What: "static token"})
	issues := writeCodeQuality(t, findings)
	if len(issues) != len(findings) {
		t.Fatalf("%d issues for %d findings", len(issues), len(findings))
	}
	prints := map[string]bool{}
	valid := map[string]bool{"info": true, "minor": true, "major": true, "critical": true, "blocker": true}
	for i, is := range issues {
		f := findings[i]
		if is.CheckName != "keyless/"+f.Rule || !strings.Contains(is.Description, f.What) || !strings.Contains(is.Description, f.Fix) {
			t.Errorf("issue %d does not say the rule, what and the fix: %+v", i, is)
		}
		if !valid[is.Severity] || is.Location.Path != f.File || is.Location.Lines.Begin < 1 {
			t.Errorf("issue %d: severity %q path %q line %d", i, is.Severity, is.Location.Path, is.Location.Lines.Begin)
		}
		if f.Line > 0 && is.Location.Lines.Begin != f.Line {
			t.Errorf("issue %d: line %d, want %d", i, is.Location.Lines.Begin, f.Line)
		}
		if prints[is.Fingerprint] {
			t.Errorf("issue %d repeats fingerprint %s: GitLab would show only one of them", i, is.Fingerprint)
		}
		prints[is.Fingerprint] = true
	}
	for i, f := range findings {
		if f.Severity == Critical && issues[i].Severity != "blocker" {
			t.Errorf("a critical finding is %q, want blocker", issues[i].Severity)
		}
	}

	// The same finding on another line (code above it changed) keeps its
	// fingerprint, so GitLab does not report it as fixed and new.
	again := writeCodeQuality(t, []Finding{moved, dup})
	n := len(issues)
	if again[0].Fingerprint != issues[n-3].Fingerprint || again[1].Fingerprint != issues[n-2].Fingerprint {
		t.Error("fingerprints depend on the line number or the run")
	}

	if empty := writeCodeQuality(t, nil); empty == nil || len(empty) != 0 {
		t.Errorf("no findings must be an empty list (GitLab rejects null): %v", empty)
	}
}

func writeCodeQuality(t *testing.T, findings []Finding) []CodeQualityIssue {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteCodeQuality(&buf, findings); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(buf.String()) == "null" {
		return nil
	}
	var issues []CodeQualityIssue
	if err := json.Unmarshal(buf.Bytes(), &issues); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	return issues
}
