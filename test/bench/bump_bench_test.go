//go:build bench

package bench

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/bump"
	"github.com/keyless-cd/keyless/internal/gitserver"
)

// TestBenchBump prints the bump figures of docs/benchmarks.md: one bump
// (clone + edit + commit + push) against the local Git server, and 20 at once.
func TestBenchBump(t *testing.T) {
	ctx := t.Context()
	rounds := envInt("BENCH_ROUNDS", 20)
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if err := srv.CreateRepo(ctx, "app", "main"); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range 20 {
		fmt.Fprintf(&b, "svc%02d:\n  image:\n    tag: v0 # bumped by CI\n", i)
	}
	if _, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"values.yaml": b.String()}}); err != nil {
		t.Fatal(err)
	}
	opts := bump.Options{RepoURL: srv.RepoURL("app"), Push: true, Committer: bump.Identity{Name: "CI", Email: "ci@example.com"}, Retries: 50}
	one := func(key, value string) (*bump.Result, error) {
		set, err := bump.ParseSet(key + "=" + value)
		if err != nil {
			return nil, err
		}
		return bump.Run(ctx, bump.Request{File: "values.yaml", Sets: []bump.SetValue{set}}, opts)
	}
	var single []time.Duration
	for i := range rounds {
		start := time.Now()
		if _, err := one("svc00.image.tag", fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		}
		single = append(single, time.Since(start))
	}
	var wg sync.WaitGroup
	attempts := make([]int, 20)
	start := time.Now()
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := one(fmt.Sprintf("svc%02d.image.tag", i), "c1")
			if err != nil {
				t.Error(err)
				return
			}
			attempts[i] = res.Attempts
		}()
	}
	wg.Wait()
	total := time.Since(start)
	sum, most := 0, 0
	for _, a := range attempts {
		sum += a
		most = max(most, a)
	}
	fmt.Printf("\n## keyless bump benchmark (%s)\n\n| figure | keyless |\n|---|---|\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("| one bump (clone + edit + commit + push), p50 of %d | %s |\n", rounds, p50(single).Round(time.Millisecond))
	fmt.Printf("| 20 concurrent bumps of different keys, total | %s |\n", total.Round(time.Millisecond))
	fmt.Printf("| attempts per bump (20 concurrent) | mean %.1f, max %d |\n", float64(sum)/20, most)
}
