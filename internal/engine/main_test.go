package engine

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/render"
)

var cluster *clustertest.Cluster

func TestMain(m *testing.M) { os.Exit(clustertest.RunMain(m, &cluster)) }

func newEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := New(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	return kubernetes.NewForConfigOrDie(cluster.Config)
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns, err := clientset(t).CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "engine-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// renderFiles writes files into a fresh checkout and renders it like a user would.
func renderFiles(t *testing.T, files map[string]string) []*unstructured.Unstructured {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, files)
	res, err := render.Render(t.Context(), render.Options{Root: root, Path: "."})
	if err != nil {
		t.Fatal(err)
	}
	return res.Objects
}

// writeFiles writes files (path → content) below root.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func configMap(name, value string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  value: \"" + value + "\"\n"
}

func deployment(name, image, extraSpec string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
spec:
  replicas: 1
` + extraSpec + `  selector:
    matchLabels: {app: ` + name + `}
  template:
    metadata:
      labels: {app: ` + name + `}
    spec:
      containers:
      - name: app
        image: ` + image + `
`
}

func service(name string) string {
	return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n  selector: {app: " + name + "}\n  ports:\n  - port: 80\n"
}

func actions(r *Result) map[string]Action {
	out := map[string]Action{}
	for _, c := range r.Changes {
		out[c.Ref.String()] = c.Action
	}
	return out
}

func wantActions(t *testing.T, r *Result, want map[string]Action) {
	t.Helper()
	got := actions(r)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: action %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("changes = %v, want exactly %v", got, want)
	}
}

// adminWrites are the persisted writes in ns made with the admin identity the
// tests use (the control-plane components have identities of their own).
func adminWrites(t *testing.T, ns string) []clustertest.AuditEvent {
	t.Helper()
	var out []clustertest.AuditEvent
	for _, w := range cluster.Writes(t, ns) {
		if w.User.Username == "keyless-local-admin" {
			out = append(out, w)
		}
	}
	return out
}
