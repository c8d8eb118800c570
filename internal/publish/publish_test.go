package publish

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func TestParseRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]Ref{
		"oci://r.example/a/b:v1":        {Repository: "r.example/a/b", Tag: "v1"},
		"oci://127.0.0.1:5000/a:v1":     {Repository: "127.0.0.1:5000/a", Tag: "v1"},
		"oci://127.0.0.1:5000/a":        {Repository: "127.0.0.1:5000/a"},
		"oci://r.example/a@" + d:        {Repository: "r.example/a", Digest: d},
		"oci://r.example/a:latest@" + d: {Repository: "r.example/a", Tag: "latest", Digest: d},
	} {
		got, err := ParseRef(in)
		if err != nil || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if err == nil && got.String() != in {
			t.Errorf("%q prints as %q", in, got.String())
		}
	}
	for _, bad := range []string{"r.example/a:v1", "oci://r.example", "oci://r.example/a:>=1", "oci://r.example/a@sha256:abc", "oci://r.example/a:"} {
		if _, err := ParseRef(bad); err == nil {
			t.Errorf("ParseRef(%q) accepted", bad)
		}
	}
}

func TestOrigin(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	gh := OriginFromCIEnv(env(map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "org/app",
		"GITHUB_RUN_ID": "7", "GITHUB_REF_NAME": "main", "GITHUB_SHA": "abc"}))
	if gh != (Origin{Source: "https://github.com/org/app", Revision: "main@sha1:abc", Pipeline: "https://github.com/org/app/actions/runs/7"}) {
		t.Errorf("GitHub: %+v", gh)
	}
	if o := OriginFromCIEnv(env(nil)); o != (Origin{}) {
		t.Errorf("outside CI: %+v", o)
	}

	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{"https://user:tok3n@git.example/org/app.git"}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	if _, err := wt.Add("a.yaml"); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("c", &git.CommitOptions{Author: &object.Signature{Name: "a", Email: "a@x", When: time.Unix(1, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := OriginFromGit(filepath.Join(dir))
	if err != nil {
		t.Fatal(err)
	}
	if o.Source != "https://git.example/org/app.git" || o.Revision != "master@sha1:"+h.String() {
		t.Errorf("from Git: %+v (the token must not be published)", o)
	}
	if o, err := OriginFromGit(t.TempDir()); err != nil || o != (Origin{}) {
		t.Errorf("outside a checkout: %+v %v", o, err)
	}
}
