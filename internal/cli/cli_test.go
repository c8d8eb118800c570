package cli

import (
	"context"
	"strings"
	"testing"
)

// run executes keyless with args and returns exit code, stdout and stderr.
func run(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runIn(ctx, t, "", args...)
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t.Context(), t, "version")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out, "keyless ") || !strings.Contains(out, "kubernetes v1.") {
		t.Fatalf("version output %q lacks the keyless or kubernetes version", out)
	}
	code, out, _ = run(t.Context(), t, "version", "-o", "json")
	if code != 0 || !strings.Contains(out, `"kubernetes": "v1.`) {
		t.Fatalf("json version: exit %d, %q", code, out)
	}
	code, _, errOut := run(t.Context(), t, "version", "-o", "yaml")
	if code == 0 || !strings.Contains(errOut, "--output") {
		t.Fatalf("bad --output: exit %d, stderr %q", code, errOut)
	}
}

func TestUnknownCommandFails(t *testing.T) {
	code, _, errOut := run(t.Context(), t, "frobnicate")
	if code == 0 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
