package controller_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// alertRules is the example alert rules file the test loads into Prometheus.
const alertRules = "examples/prometheus/keyless-alerts.yaml"

// prometheus is a real Prometheus (Debian's package) scraping one target
// every second, with keyless's example alert rules loaded.
type prometheus struct {
	url string
}

func startPrometheus(t *testing.T, target, rules string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("no prometheus binary: `apt-get install prometheus` (.ci/run installs it)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [%q]\nscrape_configs:\n  - job_name: keyless\n    static_configs: [{targets: [%q]}]\n", rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr) //nolint:gosec // the test's own Prometheus
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
	})
	p := &prometheus{url: "http://" + addr}
	waitForOr(t, 30*time.Second, "Prometheus ready", func() (bool, string) {
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	}, func() string { b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log")); return string(b) })
	return p
}

// api GETs path of Prometheus's HTTP API into out's data.
func (p *prometheus) api(t *testing.T, path string, q url.Values, out any) error {
	t.Helper()
	resp, err := http.Get(p.url + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err
	}
	if body.Status != "success" {
		return fmt.Errorf("prometheus %s: %s", path, body.Error)
	}
	return json.Unmarshal(body.Data, out)
}

// waitQuery waits until the instant query returns at least one series, and returns their labels and values.
func (p *prometheus) waitQuery(t *testing.T, query string, timeout time.Duration) []map[string]string {
	t.Helper()
	var got []map[string]string
	waitFor(t, timeout, "Prometheus: "+query, func() (bool, string) {
		var data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		}
		if err := p.api(t, "/api/v1/query", url.Values{"query": {query}}, &data); err != nil {
			return false, err.Error()
		}
		got = nil
		for _, r := range data.Result {
			m := r.Metric
			m["__value__"] = fmt.Sprint(r.Value[1])
			got = append(got, m)
		}
		return len(got) > 0, "no series"
	})
	return got
}

// TestAlertRulesFire runs the example alert rules' own unit tests with
// promtool: each alert fires after its `for:` on the series a broken setup
// gives (no leader: the master status 0, or no controller scraped at all),
// and none fires for a healthy one.
func TestAlertRulesFire(t *testing.T) {
	dir := filepath.Join(repoRoot(t), filepath.Dir(alertRules))
	cmd := exec.CommandContext(t.Context(), "promtool", "test", "rules", "keyless-alerts_test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules (in %s): %v\n%s", dir, err, out)
	}
}

// TestMetricsScrapedByPrometheus: a real Prometheus scrapes the controller;
// the per-Application series say what happened (info with sync, health and
// revision; sync durations and results; drift reverts; Git latency by
// host), and the example alert rules load and fire on a failing sync.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	root := repoRoot(t)
	if out, err := exec.Command("promtool", "check", "rules", filepath.Join(root, alertRules)).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertRules, err, out)
	}
	e := newEnv(t)
	e.metricsAddr, e.pprofAddr = freeLoopbackAddr(t), freeLoopbackAddr(t)
	e.leaderElect = true
	e.startController(time.Hour)
	assertPprofOnlyAt(t, e.pprofAddr, e.metricsAddr)
	prom := startPrometheus(t, e.metricsAddr, filepath.Join(root, alertRules))
	first := e.push(manifests("registry.example.com/web:1.0", "hello"), nil, "initial deploy")
	e.createApp("web", "deploy", 5*time.Second)
	e.waitApp("web", "Ready", 60*time.Second, func(a *kv1.Application) bool { return ready(a) && a.Status.LastAppliedRevision == first })

	info := prom.waitQuery(t, fmt.Sprintf(`keyless_application_info{namespace=%q,name="web",sync="Synced",health="Healthy",ready="True",revision=%q}`, appNS, kv1.ShortSHA(first)), 30*time.Second)
	if len(info) != 1 || info[0]["__value__"] != "1" {
		t.Errorf("info series %v: want one, value 1", info)
	}
	prom.waitQuery(t, fmt.Sprintf(`keyless_application_sync_duration_seconds_count{namespace=%q,name="web",result="success"} >= 1`, appNS), 30*time.Second)
	prom.waitQuery(t, `keyless_git_operation_duration_seconds_count{op="ls-remote",host=~"127.0.0.1:[0-9]+"} >= 1`, 30*time.Second)
	// The series KeylessNoLeader reads, as the alert's selector finds it.
	prom.waitQuery(t, `leader_election_master_status{name=~"keyless-controller.*"} == 1`, 30*time.Second)

	t.Log("drift reverted: counted per Application")
	dep, err := e.cs.AppsV1().Deployments(appNS).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep.Spec.Template.Spec.Containers[0].Image = "evil.example/miner:1"
	if _, err := e.cs.AppsV1().Deployments(appNS).Update(t.Context(), dep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	prom.waitQuery(t, fmt.Sprintf(`keyless_application_drift_reverted_total{namespace=%q,name="web"} >= 1`, appNS), 30*time.Second)

	t.Log("a refused commit: the info series turns Ready=False, only one series for the Application, the alert goes pending")
	bad := manifests("registry.example.com/web:3.0", "hello")
	bad["deploy/clusterrole.yaml"] = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: grab-everything\nrules: []\n"
	e.push(bad, nil, "web 3.0 and a ClusterRole")
	prom.waitQuery(t, fmt.Sprintf(`keyless_application_info{namespace=%q,name="web",ready="False",reason=%q}`, appNS, kv1.ReasonRefused), 30*time.Second)
	if n := prom.waitQuery(t, fmt.Sprintf(`count(keyless_application_info{namespace=%q,name="web"})`, appNS), 10*time.Second); n[0]["__value__"] != "1" {
		t.Errorf("%s series of keyless_application_info for one Application, want 1 (the old one deleted)", n[0]["__value__"])
	}
	prom.waitAlert(t, "KeylessSyncFailing", "web")
	if prom.alertState(t, "KeylessNoLeader", "") != "" {
		t.Error("KeylessNoLeader is active while the controller leads")
	}

	t.Log("the controller stops: no leader, KeylessNoLeader goes pending")
	e.stopController()
	prom.waitAlert(t, "KeylessNoLeader", "")
}

// TestGitHostSeriesOfAnEditedRepoURL: whoever may edit an Application
// points its repoURL at 60 hosts in turn; keyless_git_operation_duration_seconds
// has a series for the host the Application reads from now, not for the
// 59 before, and none once the Application is deleted.
func TestGitHostSeriesOfAnEditedRepoURL(t *testing.T) {
	e := newEnv(t)
	e.metricsAddr = freeLoopbackAddr(t)
	e.startController(time.Hour)
	// Nobody listens on port of any 127.0.0.0/8 address: each ls-remote is
	// refused at once, and is observed all the same.
	_, port, err := net.SplitHostPort(freeLoopbackAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	host := func(i int) string { return fmt.Sprintf("127.0.0.%d:%s", i+2, port) }
	repoURL := func(i int) string { return "http://" + host(i) + "/" + repoName }
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: appNS},
		Spec:       kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: repoURL(0), TargetRevision: "main", Path: "deploy"}},
	}
	if err := e.admin.Create(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if i > 0 {
			app := e.app("web")
			patch := client.MergeFrom(app.DeepCopy())
			app.Spec.Source.RepoURL = repoURL(i)
			if err := e.admin.Patch(t.Context(), app, patch); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 30*time.Second, "a series for "+host(i), func() (bool, string) {
			hosts := gitHostSeries(t, e.metricsAddr, port)
			return len(hosts) == 1 && hosts[0] == host(i), fmt.Sprintf("series for hosts %v", hosts)
		})
	}

	t.Log("the Application deleted: its host's series go with it")
	if err := e.admin.Delete(t.Context(), e.app("web")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "no series for "+host(59), func() (bool, string) {
		hosts := gitHostSeries(t, e.metricsAddr, port)
		return len(hosts) == 0, fmt.Sprintf("series for hosts %v", hosts)
	})
}

// gitHostSeries scrapes the controller's metrics at addr and returns the
// hosts on port that keyless_git_operation_duration_seconds has series for.
func gitHostSeries(t *testing.T, addr, port string) []string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	hostRE := regexp.MustCompile(`host="([^"]*)"`)
	seen := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "keyless_git_operation_duration_seconds_count{") {
			continue
		}
		if m := hostRE.FindStringSubmatch(line); m != nil && strings.HasSuffix(m[1], ":"+port) {
			seen[m[1]] = true
		}
	}
	var out []string
	for h := range seen {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// alertState is the state (pending, firing) of alert for the Application
// name ("" for any), or "" when it is not active.
func (p *prometheus) alertState(t *testing.T, alert, name string) string {
	t.Helper()
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := p.api(t, "/api/v1/alerts", nil, &data); err != nil {
		t.Fatal(err)
	}
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == alert && (name == "" || a.Labels["name"] == name) {
			return a.State
		}
	}
	return ""
}

// waitAlert waits up to 30 s for alert to be pending or firing.
func (p *prometheus) waitAlert(t *testing.T, alert, name string) {
	t.Helper()
	waitFor(t, 30*time.Second, alert+" active in Prometheus", func() (bool, string) {
		st := p.alertState(t, alert, name)
		return st == "pending" || st == "firing", "state " + st
	})
}

// freeLoopbackAddr is a loopback address no one listens on (now).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// assertPprofOnlyAt checks --pprof-bind-address: Go's profiles are served
// at pprof and not on the metrics address (a heap profile holds decrypted
// Secrets; the metrics port may be scraped from anywhere).
func assertPprofOnlyAt(t *testing.T, pprof, metrics string) {
	t.Helper()
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(body)
	}
	if code, body := get("http://" + pprof + "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.HasPrefix(body, "goroutine profile: total ") {
		t.Fatalf("pprof at --pprof-bind-address: %d %.80q", code, body)
	}
	if code, _ := get("http://" + metrics + "/debug/pprof/goroutine?debug=1"); code == http.StatusOK {
		t.Fatal("the metrics address serves pprof profiles")
	}
}
