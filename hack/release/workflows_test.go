package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// releaseFiles are what both workflows upload: every file make release
// writes into dist/ (image/ is pushed, not uploaded) and chart.txt.
var releaseFiles = []string{"keyless-*.tar.gz", "keyless-*.cdx.json", "keyless-*.tgz", ChecksumsFile, ImageFile, ChartFile}

// TestReleaseWorkflows: the GitHub Actions and GitLab CI release workflows
// parse as YAML, run on a v* tag only, call make release then make
// release-publish with the tag as VERSION (the targets TestReleaseDryRun
// exercises), and upload the same files; the Makefile's targets run
// hack/release.
func TestReleaseWorkflows(t *testing.T) {
	root := moduleRoot(t)
	gh := readYAML(t, filepath.Join(root, ".github", "workflows", "release.yml"))
	on, _ := gh["on"].(map[string]any)
	push, _ := on["push"].(map[string]any)
	if tags, _ := push["tags"].([]any); len(on) != 1 || len(push) != 1 || len(tags) != 1 || tags[0] != "v*" {
		t.Errorf("release.yml runs on %v, want a push of a v* tag only", on)
	}
	jobs, _ := gh["jobs"].(map[string]any)
	var ghScript []string
	for _, j := range jobs {
		steps, _ := j.(map[string]any)["steps"].([]any)
		for _, s := range steps {
			if run, ok := s.(map[string]any)["run"].(string); ok {
				ghScript = append(ghScript, run)
			}
		}
	}
	checkScript(t, "release.yml", strings.Join(ghScript, "\n"), `"\$VERSION"`)
	if env, _ := jobs["release"].(map[string]any)["env"].(map[string]any); env["VERSION"] != "${{ github.ref_name }}" {
		t.Errorf("release.yml: VERSION is %v, want the tag (github.ref_name)", env["VERSION"])
	}

	gl := readYAML(t, filepath.Join(root, ".gitlab-ci.yml"))
	job, _ := gl["release"].(map[string]any)
	rules, _ := job["rules"].([]any)
	if len(rules) != 1 || !strings.Contains(rules[0].(map[string]any)["if"].(string), "$CI_COMMIT_TAG =~ /^v") {
		t.Errorf(".gitlab-ci.yml release job rules %v, want a v* tag only", rules)
	}
	script, _ := job["script"].([]any)
	var glScript []string
	for _, s := range script {
		glScript = append(glScript, s.(string))
	}
	vars, _ := gl["variables"].(map[string]any)
	checkScript(t, ".gitlab-ci.yml", strings.Join(glScript, "\n")+"\n"+vars["RELEASE_FILES"].(string), `"\$CI_COMMIT_TAG"`)

	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for target, cmd := range map[string]string{"release": "go run ./hack/release --version $(VERSION)", "release-publish": "go run ./hack/release --publish --version $(VERSION)"} {
		if !regexp.MustCompile(`(?m)^` + target + `:.*\n\t` + regexp.QuoteMeta(cmd)).Match(mk) {
			t.Errorf("Makefile: target %s does not run %s", target, cmd)
		}
	}
}

// checkScript: script runs make release, then make release-publish, both
// with VERSION=tag, and names every release file.
func checkScript(t *testing.T, file, script, tag string) {
	t.Helper()
	build := regexp.MustCompile(`make release VERSION=` + tag).FindStringIndex(script)
	publish := regexp.MustCompile(`make release-publish VERSION=` + tag).FindStringIndex(script)
	if build == nil || publish == nil || publish[0] < build[0] {
		t.Errorf("%s: want make release VERSION=%s, then make release-publish VERSION=%s; script:\n%s", file, tag, tag, script)
	}
	for _, f := range releaseFiles {
		if !strings.Contains(script, f) {
			t.Errorf("%s does not upload %s", file, f)
		}
	}
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}
