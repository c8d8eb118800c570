package controller_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/repo/v1"
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
	h := &helmRepo{t: t, dir: t.TempDir()}
	srv := httptest.NewServer(http.FileServer(http.Dir(h.dir)))
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
