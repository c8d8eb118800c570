package gitsource

import (
	"testing"
	"time"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

// TestResolveWithinSharesOneLsRemotePerInterval: passes that accept an
// answer as old as their interval cost the Git server one ref
// advertisement, whatever their number; a commit pushed meanwhile is seen
// once the answer is older than that, or at once after Invalidate (a
// webhook); another credential asks the server itself.
func TestResolveWithinSharesOneLsRemotePerInterval(t *testing.T) {
	ctx := t.Context()
	srv := startAppRepo(t)
	first, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"a.yaml": "a: 1\n"}})
	if err != nil {
		t.Fatal(err)
	}
	src, err := New(Options{CacheDir: t.TempDir(), LsRemoteTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.RepoURL("app")
	auth := &githttp.BasicAuth{Username: "x", Password: "tok"}
	before := srv.Advertisements()
	for range 100 {
		rev, err := src.ResolveWithin(ctx, url, "main", auth, time.Hour)
		if err != nil || rev.SHA != first {
			t.Fatalf("ResolveWithin = %+v, %v", rev, err)
		}
	}
	if n := srv.Advertisements() - before; n != 1 {
		t.Fatalf("100 passes within their interval made %d ls-remotes, want 1", n)
	}
	second, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"a.yaml": "a: 2\n"}})
	if err != nil {
		t.Fatal(err)
	}
	if rev, _ := src.ResolveWithin(ctx, url, "main", auth, time.Hour); rev.SHA != first {
		t.Fatalf("within the interval the shared answer is kept: got %s", rev.SHA)
	}
	if rev, _ := src.ResolveWithin(ctx, url, "main", auth, time.Nanosecond); rev.SHA != second {
		t.Fatalf("an answer older than the interval is asked again: got %s", rev.SHA)
	}
	third, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"a.yaml": "a: 3\n"}})
	if err != nil {
		t.Fatal(err)
	}
	src.Invalidate(url)
	if rev, _ := src.ResolveWithin(ctx, url, "main", auth, time.Hour); rev.SHA != third {
		t.Fatalf("after Invalidate the server is asked: got %s", rev.SHA)
	}
	n := srv.Advertisements()
	other := &githttp.BasicAuth{Username: "y", Password: "tok"}
	if _, err := src.ResolveWithin(ctx, url, "main", other, time.Hour); err != nil {
		t.Fatal(err)
	}
	if srv.Advertisements() != n+1 {
		t.Fatal("another credential reused an answer given to the first")
	}
}
