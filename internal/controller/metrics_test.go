package controller

import (
	"fmt"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keyless-cd/keyless/internal/version"
)

// gitHostLabels are the host labels the histogram has series for, sorted.
func gitHostLabels(t *testing.T, h *prometheus.HistogramVec) []string {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	h.Collect(ch)
	close(ch)
	seen := map[string]bool{}
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == labelHost {
				seen[l.GetValue()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

func newGitDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "test_git_duration_seconds"}, []string{"op", labelHost})
}

// TestGitHostSeriesFollowTheApplications: an editor who points one
// Application at 60 hosts in turn leaves the series of the last host only;
// a host two Applications read from keeps its series until the second goes.
func TestGitHostSeriesFollowTheApplications(t *testing.T) {
	h := newGitDuration()
	g := newGitHosts(h, maxGitHostSeries)
	web := types.NamespacedName{Namespace: "team-a", Name: "web"}
	for i := range 60 {
		url := fmt.Sprintf("https://host-%d.example:8443/org/repo.git", i)
		g.use(web, url)
		g.observe("ls-remote", url, time.Millisecond)
		g.observe("fetch", url, time.Millisecond)
	}
	if got := gitHostLabels(t, h); len(got) != 1 || got[0] != "host-59.example:8443" {
		t.Fatalf("after 60 edits the hosts with series are %v, want the last one only", got)
	}

	api := types.NamespacedName{Namespace: "team-b", Name: "api"}
	g.use(api, "https://host-59.example:8443/org/api.git")
	g.release(web)
	if got := gitHostLabels(t, h); len(got) != 1 || got[0] != "host-59.example:8443" {
		t.Fatalf("hosts %v after web went: want host-59's series kept for api", got)
	}
	g.release(api)
	g.release(api) // a second forget changes nothing
	if got := gitHostLabels(t, h); len(got) != 0 {
		t.Fatalf("hosts %v after both Applications went, want none", got)
	}
}

// TestGitHostSeriesAreBounded: past maxGitHostSeries hosts, and for hosts no
// Application reads from, operations are counted under "other"; a slot
// freed by a host no longer read from is taken by the next.
func TestGitHostSeriesAreBounded(t *testing.T) {
	h := newGitDuration()
	g := newGitHosts(h, 3)
	url := func(i int) string { return fmt.Sprintf("https://h%d.example/r.git", i) }
	for i := range 5 {
		g.use(types.NamespacedName{Namespace: "ns", Name: fmt.Sprint(i)}, url(i))
		g.observe("fetch", url(i), time.Millisecond)
	}
	g.observe("fetch", "https://nobody-reads-this.example/r.git", time.Millisecond)
	g.observe("fetch", "not a url", time.Millisecond)
	g.use(types.NamespacedName{Namespace: "ns", Name: "named-other"}, "https://other/r.git")
	g.observe("fetch", "https://other/r.git", time.Millisecond)
	want := []string{"h0.example", "h1.example", "h2.example", otherHost}
	if got := gitHostLabels(t, h); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hosts %v, want %v", got, want)
	}
	g.release(types.NamespacedName{Namespace: "ns", Name: "named-other"}) // never deletes "other"
	g.release(types.NamespacedName{Namespace: "ns", Name: "1"})
	g.observe("fetch", url(4), time.Millisecond)
	want = []string{"h0.example", "h2.example", "h4.example", otherHost}
	if got := gitHostLabels(t, h); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hosts %v after h1 went, want %v", got, want)
	}
}

// TestBuildInfoMetric: keyless_build_info is 1 and names the running
// version, Go version and platform.
func TestBuildInfoMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildInfo())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 1 || families[0].GetName() != "keyless_build_info" || len(families[0].Metric) != 1 {
		t.Fatalf("gathered %v", families)
	}
	m := families[0].Metric[0]
	labels := map[string]string{}
	for _, l := range m.Label {
		labels[l.GetName()] = l.GetValue()
	}
	if m.GetGauge().GetValue() != 1 || labels["version"] != version.Version() || labels["goversion"] != runtime.Version() || labels["platform"] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("keyless_build_info %v = %v", labels, m.GetGauge().GetValue())
	}
}
