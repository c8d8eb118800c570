//go:build bench

package bench

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/version"
)

// TestBenchForge measures push → commit status success visible through a
// real Gitea's API: the developer's loop. The floor in the same run is
// Gitea's own webhook delivery (push → a second webhook received by a
// trivial receiver), which no CD tool triggered by that webhook can beat.
func TestBenchForge(t *testing.T) {
	ctx := t.Context()
	rounds := envInt("BENCH_ROUNDS", 10)
	dir := t.TempDir()
	c := clustertest.Start(t, localcluster.Options{})
	cs, admin := clients(t, c.Config)
	install(t, c.Config, cs)

	g, err := gitserver.StartGitea(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	if err := g.CreateRepo(ctx, repo); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Commit(ctx, repo, gitserver.Commit{Files: appFiles("lat", "registry.example.com/lat:0"), Message: "lat"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "git", Namespace: ns, Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit},
			Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}}, StringData: map[string]string{"username": gitserver.GiteaUser, "password": g.Token()}},
		{ObjectMeta: metav1.ObjectMeta{Name: "status", Namespace: ns, Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialForge},
			Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}}, StringData: map[string]string{kv1.CommitStatusTokenKey: g.Token()}},
		{ObjectMeta: metav1.ObjectMeta{Name: "keyless-webhook", Namespace: ns}, StringData: map[string]string{"github": hookSecret}},
	} {
		if err := admin.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	bin := filepath.Join(dir, "keyless")
	if out, err := exec.Command("go", "build", "-tags", version.BuildTags, "-o", bin, filepath.Join(root(), "cmd", "keyless")).CombinedOutput(); err != nil {
		t.Fatalf("building keyless: %v\n%s", err, out)
	}
	kubeconfig := controllerKubeconfig(t, c.Config, cs, filepath.Join(dir, "controller.kubeconfig"))
	hookAddr := freeAddr(t)
	cmd := exec.Command(bin, "controller", "--kubeconfig", kubeconfig, "--namespaces", ns,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--default-interval", "1h",
		"--webhook-bind-address", hookAddr, "--allow-insecure-http", "--cache-dir", filepath.Join(dir, "cache"))
	logf, _ := os.Create(filepath.Join(dir, "controller.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()

	// The floor's receiver: records when Gitea delivered each push.
	var mu sync.Mutex
	received := map[string]time.Time{}
	floor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			After string `json:"after"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
		mu.Lock()
		received[body.After] = time.Now()
		mu.Unlock()
	}))
	defer floor.Close()
	if err := g.AddWebhook(ctx, repo, "http://"+hookAddr+"/hooks/github/"+ns, hookSecret); err != nil {
		t.Fatal(err)
	}
	if err := g.AddWebhook(ctx, repo, floor.URL, "floor-secret"); err != nil {
		t.Fatal(err)
	}
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "lat", Namespace: ns},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: g.RepoURL(repo), TargetRevision: "main", Path: "apps/lat",
				SecretRef: &kv1.LocalObjectReference{Name: "git"}},
			SyncPolicy:   &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}},
			Interval:     &metav1.Duration{Duration: time.Hour},
			CommitStatus: &kv1.CommitStatus{Provider: kv1.ForgeGitea, SecretRef: kv1.LocalObjectReference{Name: "status"}},
		},
	}
	if err := admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	success := func(sha string) bool {
		all, err := g.Statuses(ctx, repo, sha)
		return err == nil && len(all) > 0 && all[0].State == "success"
	}
	if !waitUntil(2*time.Minute, func() bool {
		a := &kv1.Application{}
		_ = admin.Get(ctx, client.ObjectKeyFromObject(app), a)
		return a.Status.LastAppliedRevision != "" && success(a.Status.LastAppliedRevision)
	}) {
		t.Fatal("the first sync never showed success at Gitea")
	}

	var total, applied, deliveredFloor []time.Duration
	for i := range rounds {
		img := "registry.example.com/lat:" + time.Now().Format("150405.000000")
		start := time.Now()
		sha, err := g.Commit(ctx, repo, gitserver.Commit{Files: appFiles("lat", img), Message: "round"})
		if err != nil {
			t.Fatal(err)
		}
		pushed := time.Now()
		var appliedAt time.Time
		ok := waitUntil(time.Minute, func() bool {
			if appliedAt.IsZero() {
				if d, err := cs.AppsV1().Deployments(ns).Get(ctx, "lat", metav1.GetOptions{}); err == nil && d.Spec.Template.Spec.Containers[0].Image == img {
					appliedAt = time.Now()
				}
			}
			return success(sha)
		})
		if !ok {
			t.Fatalf("round %d: no success status on %s", i, sha)
		}
		done := time.Now()
		mu.Lock()
		got, delivered := received[sha]
		mu.Unlock()
		if !delivered {
			t.Fatalf("round %d: the floor's webhook never arrived", i)
		}
		total = append(total, done.Sub(pushed))
		applied = append(applied, appliedAt.Sub(pushed))
		deliveredFloor = append(deliveredFloor, got.Sub(pushed))
		t.Logf("round %d: push took %s; push → webhook at the floor's receiver %s, → applied %s, → success visible at Gitea %s",
			i, pushed.Sub(start).Round(time.Millisecond), got.Sub(pushed).Round(time.Millisecond), appliedAt.Sub(pushed).Round(time.Millisecond), done.Sub(pushed).Round(time.Millisecond))
	}
	t.Logf("RESULT push → success status visible at Gitea p50 %s; push → applied p50 %s; floor (push → Gitea's webhook delivered) p50 %s; ratio %.1f×",
		p50(total).Round(time.Millisecond), p50(applied).Round(time.Millisecond), p50(deliveredFloor).Round(time.Millisecond),
		float64(p50(total))/float64(p50(deliveredFloor)))
}
