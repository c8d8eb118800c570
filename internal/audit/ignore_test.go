package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIgnoresNeedReasons(t *testing.T) {
	for _, bad := range []string{"KL010", "KL010:.gitlab-ci.yml", "KL010=", "KL999=why", "KL010:[=x"} {
		if _, err := ParseIgnore(bad); err == nil {
			t.Errorf("ParseIgnore(%q) accepted", bad)
		}
	}
	ig, err := ParseIgnore("KL010:.gitlab-ci.yml=legacy job, removed in Q3")
	if err != nil || ig.Reason != "legacy job, removed in Q3" {
		t.Fatalf("%+v %v", ig, err)
	}
	findings, err := ScanRepo("testdata/repo", ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kept, ignored := Apply(findings, []Ignore{ig, {Rule: "KL022", Path: "rbac/*.yaml", Reason: "break-glass roles"}})
	if len(ignored) != 4 || len(kept) != len(findings)-4 {
		t.Fatalf("ignored %d, kept %d of %d", len(ignored), len(kept), len(findings))
	}
	for _, f := range kept {
		if (f.Rule == "KL010" && f.File == ".gitlab-ci.yml") || f.Rule == "KL022" {
			t.Errorf("not ignored: %+v", f)
		}
	}
	file := filepath.Join(t.TempDir(), "ignore.yaml")
	_ = os.WriteFile(file, []byte("- {rule: KL020, path: k8s/sa-token.yaml}\n"), 0o600)
	if _, err := LoadIgnoreFile(file); err == nil || !strings.Contains(err.Error(), "reason is required") {
		t.Fatalf("ignore file without reason: %v", err)
	}
}

func TestIgnoreDirGlob(t *testing.T) {
	fs := []Finding{{Rule: "KL001", File: "a/b/c/k.yaml"}, {Rule: "KL001", File: "ab/k.yaml"}}
	kept, ignored := Apply(fs, []Ignore{{Rule: "KL001", Path: "a/**", Reason: "fixtures"}})
	if len(ignored) != 1 || ignored[0].File != "a/b/c/k.yaml" || len(kept) != 1 {
		t.Fatalf("kept %v ignored %v", kept, ignored)
	}
}

// TestEachAcceptedFindingCarriesItsOwnReason: two ignores of one rule for
// different paths; each accepted finding names the reason of the ignore
// that matched it, not the first one of its rule.
func TestEachAcceptedFindingCarriesItsOwnReason(t *testing.T) {
	fs := []Finding{{Rule: "KL001", File: "fixtures/k.yaml"}, {Rule: "KL001", File: "docs/example.yaml"}}
	_, ignored := Apply(fs, []Ignore{
		{Rule: "KL001", Path: "fixtures/**", Reason: "test fixtures"},
		{Rule: "KL001", Path: "docs/*", Reason: "documentation example"},
	})
	got := map[string]string{}
	for _, a := range ignored {
		got[a.File] = a.By.Reason
	}
	if got["fixtures/k.yaml"] != "test fixtures" || got["docs/example.yaml"] != "documentation example" {
		t.Fatalf("reasons = %v", got)
	}
}
