package controller

import (
	"strings"
	"testing"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
)

// TestDriftDiffWithheldWithDecryption: the diff of an Application with
// spec.decryption never reaches status.sync.diff, whatever the kind; one
// without keeps its diff.
func TestDriftDiffWithheldWithDecryption(t *testing.T) {
	const plaintext = "cm-value-from-a-sops-file"
	res := &engine.Result{Changes: []engine.Change{{
		Ref:    engine.ObjectRef{Kind: "ConfigMap", Name: "settings"},
		Action: engine.ActionConfigured,
		Diff:   "--- ConfigMap/settings\n+++ ConfigMap/settings\n-  dsn: edited\n+  dsn: " + plaintext + "\n",
	}}}
	app := &kv1.Application{}
	if d := driftDiff(res, app); !strings.Contains(d, plaintext) {
		t.Fatalf("without spec.decryption the diff is shown, got %q", d)
	}
	app.Spec.Decryption = &kv1.Decryption{Provider: kv1.DecryptionProviderSOPS, SecretRef: kv1.LocalObjectReference{Name: "sops-age"}}
	if d := driftDiff(res, app); strings.Contains(d, plaintext) || !strings.Contains(d, "diff withheld") {
		t.Fatalf("with spec.decryption status.sync.diff is %q, want it withheld", d)
	}
}
