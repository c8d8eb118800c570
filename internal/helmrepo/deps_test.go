package helmrepo

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/downloader"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// appChart writes a copy of testdata/charts/app whose Chart.yaml depends on
// lib from the Helm repository (httpsURL), ocilib from the registry
// (ociURL), a file:// chart and the vendored charts/vendored; it
// returns the chart's folder.
func appChart(t *testing.T, httpsURL, ociURL, httpsRange, ociRange string) string {
	t.Helper()
	top := t.TempDir()
	dir := filepath.Join(top, "app")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "charts", "app"))); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(top, "local"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(top, "local", "Chart.yaml"), []byte("apiVersion: v2\nname: local\nversion: 1.0.0\n"))
	writeChartYAML(t, dir, httpsURL, ociURL, httpsRange, ociRange)
	return dir
}

func writeChartYAML(t *testing.T, dir, httpsURL, ociURL, httpsRange, ociRange string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "Chart.yaml"), fmt.Appendf(nil, `apiVersion: v2
name: app
version: 1.0.0
dependencies:
  - name: lib
    version: %q
    repository: %s
  - name: ocilib
    version: %q
    repository: %s
  - name: local
    version: 1.0.0
    repository: file://../local
  - name: vendored
    version: 1.0.0
`, httpsRange, httpsURL, ociRange, ociURL))
}

// helmDependencyUpdate runs Helm's own `helm dependency update` (the
// downloader's Manager) on a copy of dir and copies the Chart.lock it
// writes into dir.
func helmDependencyUpdate(t *testing.T, dir string, r *helmRepo, reg *ociRegistry) {
	t.Helper()
	tmp := t.TempDir()
	work := filepath.Join(tmp, "app")
	if err := os.CopyFS(work, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(tmp, "local"), os.DirFS(filepath.Join(filepath.Dir(dir), "local"))); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(tmp, "ca.pem")
	writeFile(t, ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw}))
	rf := repo.NewFile()
	rf.Add(&repo.Entry{Name: "test", URL: r.srv.URL, Username: r.user, Password: r.pass, CAFile: ca})
	repoConfig := filepath.Join(tmp, "repositories.yaml")
	if err := rf.WriteFile(repoConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, c := range reg.trust() {
		pool.AddCert(c)
	}
	rc, err := registry.NewClient(registry.ClientOptCredentialsFile(filepath.Join(tmp, "config.json")),
		registry.ClientOptBasicAuth(registryUser, registryPass),
		registry.ClientOptHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}))
	if err != nil {
		t.Fatal(err)
	}
	m := &downloader.Manager{
		Out: io.Discard, ChartPath: work, Getters: getter.Getters(), RegistryClient: rc,
		RepositoryConfig: repoConfig, RepositoryCache: filepath.Join(tmp, "cache"), ContentCache: filepath.Join(tmp, "content"),
	}
	if err := m.Update(); err != nil {
		t.Fatalf("helm dependency update: %v", err)
	}
	lock, err := os.ReadFile(filepath.Join(work, "Chart.lock"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Chart.lock"), lock)
}

func TestDependenciesFromHelmRepositoryAndRegistry(t *testing.T) {
	r := newHelmRepo(t, "reader", "s3cret")
	r.add("lib", "0.1.0", "0.1.1")
	r.index("")
	reg := startRegistry(t, false)
	reg.push(t, "ocilib:lib", "0.2.0")
	reg.push(t, "ocilib:lib", "0.2.1")
	dir := appChart(t, r.srv.URL, reg.url(), "~0.1.0", "~0.2.0")
	creds := func(u string) *Credentials {
		if strings.HasPrefix(u, "oci://") {
			return registryCreds(reg)
		}
		return basicCreds(r)
	}
	trust := append(reg.trust(), r.srv.Certificate())

	// Without Chart.lock: ranges resolved, a warning that the build is not pinned.
	f := newTestFetcher(t, Options{}, trust...)
	res, err := f.Dependencies(t.Context(), dir, creds)
	if err != nil {
		t.Fatal(err)
	}
	assertDeps(t, res, "0.1.1", "0.2.1")
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "no Chart.lock") || !strings.Contains(res.Warnings[0], "not pinned") ||
		!strings.Contains(res.Warnings[0], "chart app") || !strings.Contains(res.Warnings[0], "lib 0.1.1") {
		t.Errorf("warnings %q: want one saying chart app's build is not pinned", res.Warnings)
	}

	// With the Chart.lock Helm writes: its versions, although newer ones
	// are in range now, and no warning.
	helmDependencyUpdate(t, dir, r, reg)
	r.add("lib", "0.1.2")
	r.index("")
	reg.push(t, "ocilib:lib", "0.2.2")
	f = newTestFetcher(t, Options{}, trust...)
	res, err = f.Dependencies(t.Context(), dir, creds)
	if err != nil {
		t.Fatal(err)
	}
	assertDeps(t, res, "0.1.1", "0.2.1")
	if len(res.Warnings) != 0 {
		t.Errorf("warnings with a Chart.lock: %q", res.Warnings)
	}

	// Chart.yaml changed, Chart.lock not: refused as helm dependency build does.
	writeChartYAML(t, dir, r.srv.URL, reg.url(), "~0.1.2", "~0.2.0")
	_, err = f.Dependencies(t.Context(), dir, creds)
	if !errors.Is(err, ErrOutOfSync) || !strings.Contains(err.Error(), "chart app") || !strings.Contains(err.Error(), "Chart.lock is out of sync with Chart.yaml") {
		t.Errorf("an out-of-sync Chart.lock: %v", err)
	}
}

// assertDeps checks the archives are lib and ocilib at the two versions,
// loadable by Helm.
func assertDeps(t *testing.T, res *DependencyResult, httpsVersion, ociVersion string) {
	t.Helper()
	if len(res.Archives) != 2 || len(res.Resolved) != 2 {
		t.Fatalf("got %d archives, %d resolved (%+v), want 2: file:// and vendored dependencies are skipped", len(res.Archives), len(res.Resolved), res.Resolved)
	}
	for i, want := range []string{httpsVersion, ociVersion} {
		if name := []string{"lib", "ocilib"}[i]; res.Resolved[i].Chart != name {
			t.Errorf("dependency %d is %s, want %s", i, res.Resolved[i].Chart, name)
		}
		if res.Resolved[i].Version != want {
			t.Errorf("dependency %d resolved to %s, want %s", i, res.Resolved[i].Version, want)
		}
		ch, err := loader.Load(res.Archives[i])
		if err != nil {
			t.Fatalf("%s: %v", res.Archives[i], err)
		}
		if ch.Metadata.Version != want {
			t.Errorf("archive %s holds %s %s, want %s", res.Archives[i], ch.Metadata.Name, ch.Metadata.Version, want)
		}
	}
	if !strings.HasPrefix(res.Resolved[0].RepoURL, "https://") || !strings.HasPrefix(res.Resolved[1].RepoURL, "oci://") {
		t.Errorf("resolved from %s and %s", res.Resolved[0].RepoURL, res.Resolved[1].RepoURL)
	}
}

func TestDependenciesRefuseRepositoryNames(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Chart.yaml"), []byte("apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - name: redis\n    version: 1.x\n    repository: \"@bitnami\"\n"))
	f := newTestFetcher(t, Options{})
	_, err := f.Dependencies(t.Context(), dir, nil)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "@bitnami") || !strings.Contains(err.Error(), "URL") {
		t.Errorf("a repository name: %v, want ErrUnsupported asking for the URL", err)
	}
}

func TestDependenciesWithoutAnyToFetch(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "charts", "app"))); err != nil {
		t.Fatal(err)
	}
	meta := map[string]any{"apiVersion": "v2", "name": "app", "version": "1.0.0", "dependencies": []map[string]any{
		{"name": "vendored", "version": "1.0.0", "repository": "https://charts.invalid"}, // vendored: no request
		{"name": "local", "version": "1.0.0", "repository": "file://../local"},
	}}
	data, err := yaml.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Chart.yaml"), data)
	f := newTestFetcher(t, Options{})
	res, err := f.Dependencies(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Archives) != 0 || len(res.Warnings) != 0 {
		t.Errorf("got %+v, want nothing fetched", res)
	}
}
