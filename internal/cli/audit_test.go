package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAuditRepoCommand(t *testing.T) {
	code, out, errOut := run(t.Context(), t, "audit", "repo", "../audit/testdata/repo")
	if code != 1 {
		t.Fatalf("exit %d (want 1: findings at or above high)\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"critical  KL001  stored/kubeconfig.yaml:9", "KL010", "fix: replace with id_tokens + `keyless deploy`"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t.Context(), t, "audit", "repo", "../audit/testdata/repo", "--format", "json")
	var findings []map[string]any
	if code != 1 || json.Unmarshal([]byte(out), &findings) != nil || len(findings) != 11 || findings[0]["severity"] != "critical" {
		t.Fatalf("json: exit %d, %d findings: %s", code, len(findings), out[:min(200, len(out))])
	}
	// The keyless examples and install are clean.
	for _, dir := range []string{"../../examples", "../../config"} {
		code, out, errOut := run(t.Context(), t, "audit", "repo", dir)
		if code != 0 || !strings.Contains(out, "no findings") {
			t.Errorf("%s: exit %d\n%s%s", dir, code, out, errOut)
		}
	}
	if code, _, errOut := run(t.Context(), t, "audit", "repo", ".", "--fail-on", "severe"); code != 2 || !strings.Contains(errOut, "--fail-on") {
		t.Errorf("bad --fail-on: exit %d %q", code, errOut)
	}
}
