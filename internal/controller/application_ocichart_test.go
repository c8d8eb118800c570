package controller_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/registry"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/registrytest"
)

// ociRegistry starts the CNCF Distribution registry (bin/registry, `make
// registry`; KEYLESS_REGISTRY under make test) on loopback, plain HTTP
// without auth (the token-auth and TLS paths are tested in
// internal/helmrepo), and returns its host:port.
func ociRegistry(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KEYLESS_REGISTRY")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), "bin", "registry")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no registry binary (%v): run `make registry` or set KEYLESS_REGISTRY", err)
	}
	return registrytest.Start(t, bin)
}

// pushLib pushes chart lib at version to oci://host/charts/lib with Helm's
// own registry client (helm push).
func pushLib(t *testing.T, host, version string) {
	t.Helper()
	c := &chartv2.Chart{
		Metadata: &chartv2.Metadata{APIVersion: chartv2.APIVersionV2, Name: "lib", Version: version},
		Templates: []*common.File{{Name: "templates/cm.yaml", Data: []byte(
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-lib}\ndata: {version: {{ .Chart.Version | quote }}, greeting: {{ .Values.greeting | quote }}}\n")}},
		Values: map[string]any{"greeting": "from oci"},
		Raw:    []*common.File{{Name: "values.yaml", Data: []byte("greeting: from oci\n")}},
	}
	path, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Push(data, host+"/charts/lib:"+version); err != nil {
		t.Fatalf("helm push lib %s: %v", version, err)
	}
}

// TestChartFromAnOCIRegistry: spec.source.chart from an oci:// registry
// (helm push's layout), a range resolved against its tags, the manifest
// digest in the revision.
func TestChartFromAnOCIRegistry(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	host := ociRegistry(t)
	pushLib(t, host, "1.0.0")
	pushLib(t, host, "1.2.0")
	pushLib(t, host, "2.0.0")
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "lib", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source:     kv1.ApplicationSource{RepoURL: "oci://" + host + "/charts", Chart: "lib", TargetRevision: "1.x"},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true}},
			Interval:   &metav1.Duration{Duration: time.Hour},
		},
	}
	if err := e.admin.Create(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	got := e.waitApp("lib", "Ready at 1.2.0", 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && strings.HasPrefix(a.Status.LastAppliedRevision, "1.2.0@sha256:")
	})
	t.Logf("revision %s", got.Status.LastAppliedRevision)
	e.waitLib("1.2.0", "from oci")
}
