package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// uiKubeconfig writes a kubeconfig for a server that is never contacted
// (keyless ui makes no request before a page is asked for).
func uiKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	const kc = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: team-a}}]
current-context: c
`
	if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUIWarnsOfDNSRebinding: bound to every address, keyless ui's warning
// names DNS rebinding and --allowed-host; a malformed --allowed-host is
// refused before anything listens.
func TestUIWarnsOfDNSRebinding(t *testing.T) {
	kc := "--kubeconfig=" + uiKubeconfig(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	code, _, errOut := run(ctx, t, "ui", kc, "--addr", "0.0.0.0:0", "--allowed-host", "dashboard.internal.example")
	if code != 0 {
		t.Fatalf("ui: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"WARNING: keyless ui listens on", "DNS rebinding", "--allowed-host NAME[:PORT]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the warning lacks %q:\n%s", want, errOut)
		}
	}

	code, _, errOut = run(t.Context(), t, "ui", kc, "--allowed-host", "http://dashboard.internal.example/")
	if code == 0 || !strings.Contains(errOut, "--allowed-host") {
		t.Fatalf("a malformed --allowed-host: exit %d\n%s", code, errOut)
	}
}

// TestUIHealthCheckExprs: keyless ui reads the controller's
// --health-check-exprs file as the controller does; an entry that does not
// compile is refused before anything listens, naming it.
func TestUIHealthCheckExprs(t *testing.T) {
	kc := "--kubeconfig=" + uiKubeconfig(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("- apiVersion: example.com/v1\n  kind: Widget\n  current: status.?phase.orValue('') == 'Running'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("- apiVersion: example.com/v1\n  kind: Widget\n  current: status.phase ==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if code, _, errOut := run(ctx, t, "ui", kc, "--addr", "127.0.0.1:0", "--health-check-exprs", good); code != 0 {
		t.Fatalf("a good file: exit %d\n%s", code, errOut)
	}
	code, _, errOut := run(t.Context(), t, "ui", kc, "--addr", "127.0.0.1:0", "--health-check-exprs", bad)
	if code == 0 || !strings.Contains(errOut, "healthCheckExprs[0] (example.com/v1 Widget).current") {
		t.Fatalf("a bad file: exit %d\n%s", code, errOut)
	}
}
