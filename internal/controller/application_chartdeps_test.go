package controller_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/repo/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// helmRepo is a static Helm repository (index.yaml and .tgz files, as
// GitHub Pages serves one) of chart lib, on loopback.
type helmRepo struct {
	t   *testing.T
	dir string
	URL string
}

// helmRepository serves a Helm repository holding chart lib at each of versions.
func helmRepository(t *testing.T, versions ...string) *helmRepo {
	t.Helper()
	return helmRepositoryWithLogin(t, "", "", versions...)
}

// helmRepositoryWithLogin is helmRepository behind HTTP basic auth (user ""
// : none), as a private repository (ChartMuseum, Artifactory) serves it.
func helmRepositoryWithLogin(t *testing.T, user, password string, versions ...string) *helmRepo {
	t.Helper()
	h := &helmRepo{t: t, dir: t.TempDir()}
	files := http.FileServer(http.Dir(h.dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); user != "" && (!ok || u != user || p != password) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	h.publish(versions...)
	return h
}

// publish adds versions of chart lib and writes the index anew.
func (h *helmRepo) publish(versions ...string) {
	h.t.Helper()
	for _, v := range versions {
		c := &chartv2.Chart{
			Metadata: &chartv2.Metadata{APIVersion: chartv2.APIVersionV2, Name: "lib", Version: v},
			Templates: []*common.File{{Name: "templates/cm.yaml", Data: []byte(
				"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-lib}\ndata: {version: {{ .Chart.Version | quote }}, greeting: {{ .Values.greeting | quote }}}\n")}},
			Values: map[string]any{"greeting": "from lib"},
		}
		if _, err := chartutil.Save(c, h.dir); err != nil {
			h.t.Fatal(err)
		}
	}
	idx, err := repo.IndexDirectory(h.dir, h.URL)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(h.dir, "index.yaml"), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// TestChartDependenciesAreFetched: a chart in Git whose dependency is not
// vendored renders with it: the controller fetches it from its Helm
// repository (the render child stays offline) and says the build is not
// pinned when there is no Chart.lock.
func TestChartDependenciesAreFetched(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	ctx := t.Context()
	repoURL := helmRepository(t, "1.0.0", "1.1.0", "2.0.0").URL
	e.push(map[string]string{
		"deps/Chart.yaml":           "apiVersion: v2\nname: deps\nversion: 0.1.0\ndependencies:\n- name: lib\n  version: 1.x\n  repository: " + repoURL + "\n",
		"deps/values.yaml":          "lib:\n  greeting: from the parent\n",
		"deps/templates/owner.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owner}\n",
	}, nil, "chart with a dependency")
	time.Sleep(1100 * time.Millisecond) // past the ls-remote a second old the seed's sync made (gitsource.Options.LsRemoteTTL)
	e.createApp("deps", "deps", time.Hour)
	e.waitApp("deps", "Ready", 60*time.Second, ready)
	cm := &corev1.ConfigMap{}
	if err := e.admin.Get(ctx, types.NamespacedName{Namespace: appNS, Name: "deps-lib"}, cm); err != nil {
		t.Fatalf("the dependency's object: %v", err)
	}
	if cm.Data["version"] != "1.1.0" || cm.Data["greeting"] != "from the parent" {
		t.Errorf("dependency ConfigMap data = %v, want version 1.1.0 (the newest in 1.x) with the parent's values", cm.Data)
	}
	e.waitEvent("deps", "ChartDependencies", 10*time.Second, "not pinned")
	if _, err := os.Stat(filepath.Join(e.cacheDir, "helm")); err != nil {
		t.Errorf("no chart cache under the controller's cache: %v", err)
	}
}

// TestPrivateDependencyRepository: a dependency in a repository behind a
// login is fetched with the Secret spec.source.helm.repositorySecretRefs
// names, bound to that repository's host; without it the render fails
// naming the repository.
func TestPrivateDependencyRepository(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	ctx := t.Context()
	charts := helmRepositoryWithLogin(t, "ci", "s3cret", "1.0.0")
	e.push(map[string]string{
		"private/Chart.yaml":        "apiVersion: v2\nname: private\nversion: 0.1.0\ndependencies:\n- name: lib\n  version: 1.0.0\n  repository: " + charts.URL + "\n",
		"private/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owner}\n",
	}, nil, "chart with a private dependency")
	time.Sleep(1100 * time.Millisecond) // past the seed's last ls-remote (gitsource.Options.LsRemoteTTL)
	e.createApp("private", "private", time.Hour)
	e.waitApp("private", "refused without a credential", 60*time.Second, func(a *kv1.Application) bool {
		c := apimeta.FindStatusCondition(a.Status.Conditions, kv1.ReadyCondition)
		return c != nil && c.Reason == kv1.ReasonRenderFailed && strings.Contains(c.Message, "401")
	})

	host := strings.TrimPrefix(charts.URL, "http://")
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "charts-login", Namespace: appNS,
			Labels:      map[string]string{kv1.CredentialLabel: kv1.CredentialHelm},
			Annotations: map[string]string{kv1.GitHostAnnotation: host}},
		StringData: map[string]string{"username": "ci", "password": "s3cret"},
	}
	if err := e.admin.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	app := e.app("private")
	patch := client.MergeFrom(app.DeepCopy()) // not an update: it would conflict with the controller's status writes
	app.Spec.Source.Helm = &kv1.HelmSource{RepositorySecretRefs: []kv1.LocalObjectReference{{Name: "charts-login"}}}
	if err := e.admin.Patch(ctx, app, patch); err != nil {
		t.Fatal(err)
	}
	e.waitApp("private", "Ready with the credential", 60*time.Second, ready)
	cm := &corev1.ConfigMap{}
	if err := e.admin.Get(ctx, types.NamespacedName{Namespace: appNS, Name: "private-lib"}, cm); err != nil {
		t.Fatalf("the private dependency's object: %v", err)
	}
}
