package gitsource

import (
	"fmt"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/readset"
)

// BenchmarkInputValues: the values of one Application's inputs at a new
// commit of a 3000-file monorepo fetched in 20 pushes (20 packs): what
// each of 1000 Applications pays when a push leaves it untouched.
func BenchmarkInputValues(b *testing.B) {
	srv := startGitServer(b)
	if err := srv.CreateRepo(b.Context(), "app", "main"); err != nil {
		b.Fatal(err)
	}
	files := map[string]string{}
	for i := range benchApps {
		for _, f := range []string{"deploy.yaml", "service.yaml", "config.yaml"} {
			files[fmt.Sprintf("apps/app-%04d/%s", i, f)] = fmt.Sprintf("# app %d %s\n", i, f)
		}
	}
	src, err := New(Options{CacheDir: b.TempDir(), LsRemoteTTL: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	var sha string
	for i := range 20 {
		if i > 0 {
			files = map[string]string{fmt.Sprintf("apps/app-%04d/config.yaml", i): fmt.Sprint(i)}
		}
		sha = checkoutAt(b, srv, src, files, nil)
	}
	_ = sha
	url := srv.RepoURL("app")
	rev, err := src.Resolve(b.Context(), url, "main", nil)
	if err != nil {
		b.Fatal(err)
	}
	inputs := []readset.Input{
		{Path: "apps/app-0500", Access: readset.List}, {Path: "apps/app-0500", Access: readset.Stat}, {Path: "apps/app-0500", Access: readset.Tree},
		{Path: "apps/app-0500/Chart.yaml", Access: readset.Stat}, {Path: "apps/app-0500/kustomization.yaml", Access: readset.Stat},
		{Path: "apps/app-0500/config.yaml", Access: readset.File}, {Path: "apps/app-0500/deploy.yaml", Access: readset.File},
	}
	for b.Loop() {
		if _, err := src.InputValues(url, rev.SHA, inputs); err != nil {
			b.Fatal(err)
		}
	}
}

// benchApps is the number of folders of the benchmark monorepos.
var benchApps = 1000
