package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/ociartifact"
	"github.com/keyless-cd/keyless/internal/publish"
	"github.com/keyless-cd/keyless/internal/registrytest"
)

// TestPublishCommand: keyless publish pushes a folder to the real registry
// with the GitLab job's login, records the job's origin, gives the same
// digest for the same files; bump --artifact moves a tag to it.
func TestPublishCommand(t *testing.T) {
	reg := registrytest.StartWith(t, registrytest.Binary(t), registrytest.Options{Username: "gitlab-ci-token", Password: "job-token"})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"GITLAB_CI": "true", "GITHUB_ACTIONS": "", "CI_REGISTRY": reg.Host, "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "job-token",
		"CI_PROJECT_URL": "https://gitlab.example.com/team/app", "CI_COMMIT_REF_NAME": "main", "CI_COMMIT_SHA": strings.Repeat("c", 40),
		"CI_JOB_URL": "https://gitlab.example.com/team/app/-/jobs/42", "SOURCE_DATE_EPOCH": "",
	} {
		t.Setenv(k, v)
	}
	ref := "oci://" + reg.Host + "/team/app/manifests:build-1"
	code, out, errOut := run(t.Context(), t, "publish", dir, ref, "--allow-insecure-http", "-o", "json")
	if code != 0 {
		t.Fatalf("publish: exit %d\n%s%s", code, out, errOut)
	}
	var res publish.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("publish -o json: %v\n%s", err, out)
	}
	want := map[string]string{
		ociartifact.AnnotationSource:   "https://gitlab.example.com/team/app",
		ociartifact.AnnotationRevision: "main@sha1:" + strings.Repeat("c", 40),
		ociartifact.AnnotationPipeline: "https://gitlab.example.com/team/app/-/jobs/42",
	}
	for k, v := range want {
		if res.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, res.Annotations[k], v)
		}
	}
	if _, ok := res.Annotations[ociartifact.AnnotationCreated]; ok {
		t.Error("created is written without --created or SOURCE_DATE_EPOCH: the digest would change by itself")
	}

	// The same files again, under another tag: the same digest.
	code, out, errOut = run(t.Context(), t, "publish", dir, "oci://"+reg.Host+"/team/app/manifests:build-2", "--allow-insecure-http")
	if code != 0 || out != "oci://"+reg.Host+"/team/app/manifests:build-2@"+res.Digest+"\n" {
		t.Fatalf("republish: exit %d, stdout %q (want the same digest %s), stderr %q", code, out, res.Digest, errOut)
	}

	// Promotion: production → build-1's digest.
	code, out, errOut = run(t.Context(), t, "bump", "--artifact", ref, "--tag", "production", "--allow-insecure-http")
	if code != 0 || !strings.HasSuffix(out, ":production@"+res.Digest+"\n") || !strings.Contains(errOut, "new tag") {
		t.Fatalf("bump --artifact: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = run(t.Context(), t, "bump", "--artifact", ref, "--tag", "production", "--allow-insecure-http")
	if code != 0 || !strings.Contains(errOut, "nothing changed") {
		t.Fatalf("bump --artifact again: exit %d, stderr %q", code, errOut)
	}

	// Refusals that say what to do.
	t.Setenv("CI_REGISTRY_PASSWORD", "wrong")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"publish", dir, ref, "--allow-insecure-http"}, "401"},
		{[]string{"publish", dir, "oci://" + reg.Host + "/team/app", "--allow-insecure-http"}, "give a tag"},
		{[]string{"publish", dir, "https://" + reg.Host + "/x:1"}, "oci://"},
		{[]string{"publish", filepath.Join(dir, "cm.yaml"), ref}, "not a folder"},
		{[]string{"bump", "--artifact", ref}, "--artifact and --tag go together"},
		{[]string{"bump", "--artifact", ref, "--tag", "p", "--file", "x"}, "leave out --file"},
	} {
		code, _, errOut := run(t.Context(), t, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want it to say %q", c.args, code, errOut, c.want)
		}
	}
	if m := regexp.MustCompile(`job-token|wrong`).FindString(errOut); m != "" {
		t.Errorf("a password in the output: %q", errOut)
	}
}
