package controller_test

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestSyncRequestIsAnsweredWhateverTheOutcome: `keyless sync` gets the
// controller's answer to every request — the objects a sync changed when
// it applies, the real error at once when the pass fails before any apply
// (here the Git server refusing the credential), with a Warning Event
// saying it; and a request no running controller serves says so.
func TestSyncRequestIsAnsweredWhateverTheOutcome(t *testing.T) {
	e := newEnv(t)
	e.startController(time.Hour)
	first := e.push(manifests("registry.example.com/web:1.0", "hello"), nil, "initial deploy")
	e.createApp("web", "deploy", time.Hour) // only the sync requests below read Git
	e.assertConverged(first, "registry.example.com/web:1.0")

	t.Log("a sync that applies lists each object it changed")
	next := e.bumpTo("registry.example.com/web:1.1")
	code, out, errOut := e.keyless("", "sync", "web", "-n", appNS, "--timeout", "60s")
	if code != 0 || !strings.Contains(out, kv1.ShortSHA(next)+" Succeeded") || !strings.Contains(out, "  Deployment/web configured") {
		t.Fatalf("keyless sync: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(out, "ConfigMap/settings") {
		t.Errorf("an unchanged object is listed as changed:\n%s", out)
	}

	t.Log("a sync the Git server refuses is answered with that error, not a timeout")
	e.git.SetToken("glpat-rotated-credential")
	start := time.Now()
	code, out, errOut = e.keyless("", "sync", "web", "-n", appNS, "--timeout", "60s")
	if code == 0 || !strings.Contains(errOut, kv1.ReasonGitFailed) || strings.Contains(errOut, "acknowledged") {
		t.Fatalf("keyless sync with Git refusing: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the answer took %s", took)
	}
	if ev := e.events(appNS); !strings.Contains(ev, "Warning Application/web "+kv1.ReasonGitFailed) {
		t.Errorf("no Warning Event for the Git failure:\n%s", ev)
	}
	e.stillRunning("registry.example.com/web:1.1")

	t.Log("a request for an Application no running controller serves says so")
	app := e.app("web")
	patch := client.MergeFrom(app.DeepCopy())
	if app.Labels == nil {
		app.Labels = map[string]string{}
	}
	app.Labels[kv1.ShardLabel] = "nowhere"
	if err := e.admin.Patch(t.Context(), app, patch); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = e.keyless("", "sync", "web", "-n", appNS, "--timeout", "3s")
	if code == 0 || !strings.Contains(errOut, "no controller acknowledged the request within 3s") || !strings.Contains(errOut, kv1.ShardLabel+"=nowhere") {
		t.Fatalf("keyless sync of an unserved Application: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
