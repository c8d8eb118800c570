package audit

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

func TestScanRepoFixture(t *testing.T) {
	findings, err := ScanRepo("testdata/repo", ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range findings {
		got = append(got, fmt.Sprintf("%s %s:%d", f.Rule, f.File, f.Line))
		if f.Why == "" || f.Fix == "" || f.What == "" {
			t.Errorf("finding without explanation: %+v", f)
		}
	}
	sort.Strings(got)
	want := []string{
		"KL001 stored/kubeconfig.yaml:9",
		"KL002 notes.txt:3",
		"KL010 .circleci/config.yml:6",
		"KL010 .github/workflows/deploy.yml:10",
		"KL010 .gitlab-ci.yml:12",
		"KL010 .gitlab-ci.yml:6",
		"KL010 Jenkinsfile:10", // kubeconfig file credential (the comment on line 9 is not a finding)
		"KL010 Jenkinsfile:6",  // withKubeConfig
		"KL010 azure-pipelines.yml:3",
		"KL010 bitbucket-pipelines.yml:8",
		"KL010 ci/deploy-staging.yml:6", // included by a glob
		"KL010 ci/shared/prod.yml:3",    // included by an included file
		"KL020 k8s/sa-token.yaml:1",
		"KL021 rbac/ci-admin.yaml:6",
		"KL022 rbac/roles.yaml:22",
		"KL022 rbac/roles.yaml:5",
		"KL030 keyless-oidc.yaml:7",
		"KL030 keyless-oidc.yaml:7",
		"KL031 apiserver/authn.yaml:31", // self-hosted GitLab, known by its CI claims
		"KL031 apiserver/authn.yaml:6",  // no project id pinned
		"KL031 apiserver/authn.yaml:6",  // prefix "" and no system: rule
		"KL040 k8s/opaque.yaml:5",       // a plaintext Secret, however harmless its value looks
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Near-misses that must not fire: an exec-plugin kubeconfig, a template
	// placeholder, id_tokens and GitHub OIDC workflows, an
	// impersonate limited by resourceNames, anything .gitignore'd, and a
	// YAML file no pipeline includes.
	for _, f := range findings {
		for _, quiet := range []string{"exec-only/", "templates/", "oidc.yml", "ignored/", "unused-snippet.yml"} {
			if strings.Contains(f.File, quiet) {
				t.Errorf("near-miss fired: %+v", f)
			}
		}
	}
	if findings[0].Severity != Critical {
		t.Errorf("not sorted by severity: %+v", findings[0])
	}
}

// FuzzScanFile: malformed CI files and manifests get no panic.
func FuzzScanFile(f *testing.F) {
	f.Add(".gitlab-ci.yml", "job:\n  script: [\"kubectl --token=$T\"]\n  id_tokens: {T: {aud: a}}\n")
	f.Add("x.yaml", "kind: Config\nusers: [{name: a, user: {token: t}}]\n")
	f.Add(".github/workflows/a.yml", "jobs: {a: {steps: [{uses: azure/k8s-set-context@v4, with: {kubeconfig: x}}]}}")
	f.Add("x.yaml", "kind: Role\nrules: [{verbs: '*'}]\n")
	f.Add("notes.txt", "YWJj\n")
	f.Add(".gitlab-ci.yml", "d:\n  script:\n    - |\n      cat > kc <<EOF\n      kind: Config\n      users: [{name: a, user: {token: t}}]\n      EOF\n    - kubectl --kubeconfig kc get pods \\\n      --token=$T\n")
	f.Add("Jenkinsfile", "withCredentials([file(credentialsId: 'x', variable: 'KC')]) { sh 'kubectl --kubeconfig $KC get pods' }\n<<\n")
	f.Add(".github/workflows/a.yml", "x: |\n  <<'E'\n  E\n  echo ${{ secrets.A }} | base64 -d > ~/.kube/config; echo $B > $KUBECONFIG\n")
	f.Fuzz(func(t *testing.T, name, data string) {
		for _, finding := range ScanFile(name, []byte(data)) {
			if finding.Rule == "" || finding.Line < 1 {
				t.Fatalf("bad finding %+v", finding)
			}
		}
	})
}

func TestIncludeGlob(t *testing.T) {
	for _, c := range []struct {
		glob, path string
		want       bool
	}{
		{"/ci/deploy.yml", "ci/deploy.yml", true},
		{"ci/deploy.yml", "ci/deploy.yml", true},
		{"/ci/*.yml", "ci/a.yml", true},
		{"/ci/*.yml", "ci/sub/a.yml", false},
		{"/ci/**.yml", "ci/sub/a.yml", true},
		{"/ci/**/a.yml", "ci/a.yml", true},
		{"/ci/a+b.yml", "ci/aab.yml", false},
		{"../../etc/passwd", "etc/passwd", true}, // cleaned to the repository root, never above it
	} {
		re, err := includeGlob(c.glob)
		if err != nil {
			t.Fatal(err)
		}
		if got := re.MatchString(c.path); got != c.want {
			t.Errorf("%s ~ %s = %v, want %v", c.glob, c.path, got, c.want)
		}
	}
}

// FuzzIncludeLocals: any CI file yields local include paths without panics.
func FuzzIncludeLocals(f *testing.F) {
	f.Add("include: a.yml")
	f.Add("include: [{local: '/ci/*.yml'}, {project: p, file: f}, 'https://x/y.yml']")
	f.Add("include: {local: x}")
	f.Add("include: [[[")
	f.Fuzz(func(t *testing.T, s string) {
		for _, l := range includeLocals([]byte(s)) {
			if _, err := includeGlob(l); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
		}
	})
}

// TestKeylessGeneratedAuthnIsClean: what `keyless oidc config` generates
// passes KL031.
func TestKeylessGeneratedAuthnIsClean(t *testing.T) {
	data, err := os.ReadFile("../../examples/oidc/generated/authn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f := ScanFile("authn.yaml", data); len(f) != 0 {
		t.Fatalf("findings in keyless's own AuthenticationConfiguration: %+v", f)
	}
}
