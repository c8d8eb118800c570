package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

func TestBumpCommand(t *testing.T) {
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if err := srv.CreateRepo(t.Context(), "app", "main"); err != nil {
		t.Fatal(err)
	}
	values := "# prod values\nimage:\n  repository: registry.example.com/app\n  tag: v1   # bumped by CI\n"
	if _, err := srv.Commit(t.Context(), "app", gitserver.Commit{Files: map[string]string{"values/app.yml": values}}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_TOKEN", "tok")
	t.Setenv("GITLAB_CI", "")
	t.Setenv("GITHUB_ACTIONS", "")
	t.Setenv("GITHUB_ACTOR", "")
	t.Setenv("GITLAB_USER_EMAIL", "")

	code, out, errOut := run(t.Context(), t, "bump", "--repo", srv.RepoURL("app"), "--file", "values/app.yml",
		"--set", "image.tag=v2", "--push", "--token-env", "TEST_TOKEN", "--committer", "CI <ci@example.com>", "--skip-ci")
	if code != 0 || !regexp.MustCompile(`^[0-9a-f]{40}\n$`).MatchString(out) {
		t.Fatalf("bump: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "image.tag v1 → v2") {
		t.Errorf("stderr does not show the change: %q", errOut)
	}

	// A checkout with --dir: already up to date, nothing committed.
	dir := t.TempDir()
	if _, err := git.PlainClone(dir, false, &git.CloneOptions{URL: srv.RepoURL("app"), Auth: &githttp.BasicAuth{Username: "x", Password: "tok"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "values/app.yml"))
	if string(got) != strings.Replace(values, "tag: v1 ", "tag: v2 ", 1) {
		t.Fatalf("pushed file = %q", got)
	}
	code, out, errOut = run(t.Context(), t, "bump", "--dir", dir, "--file", "values/app.yml", "--set", "image.tag=v2", "--commit")
	if code != 0 || out != "" || !strings.Contains(errOut, "already up to date") {
		t.Fatalf("no-op bump: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Bad input: clear errors, non-zero exit, file byte-identical.
	before, _ := os.ReadFile(filepath.Join(dir, "values/app.yml"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "image.tag"}, "want path=value"},
		{[]string{"--set", "image.tga=v3"}, `segment "tga" not found in image`},
		{[]string{"--set", "image=v3"}, "not a scalar"},
		{[]string{"--image", "registry.example.com/app"}, "needs a tag or a digest"},
		{[]string{"--image", "registry.example.com/app=::bad"}, "not an image reference"},
		{[]string{}, "nothing to change"},
	} {
		args := append([]string{"bump", "--dir", dir, "--file", "values/app.yml"}, tc.args...)
		code, _, errOut := run(t.Context(), t, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
		after, _ := os.ReadFile(filepath.Join(dir, "values/app.yml"))
		if string(after) != string(before) {
			t.Fatalf("%v changed the file", tc.args)
		}
	}
	code, _, errOut = run(t.Context(), t, "bump", "--dir", dir, "--file", "values/app.yml", "--set", "image.tag=v3", "--push", "--token-env", "UNSET_TOKEN_VAR")
	if code == 0 || !strings.Contains(errOut, "UNSET_TOKEN_VAR") {
		t.Fatalf("unset token variable: exit %d, %q", code, errOut)
	}
}
