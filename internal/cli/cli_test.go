package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/version"
)

// run executes keyless with args and returns exit code, stdout and stderr.
func run(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runIn(ctx, t, "", args...)
}

// wantOutput fails t unless out holds every string of want and none of
// notWant.
func wantOutput(t *testing.T, out string, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, w := range notWant {
		if strings.Contains(out, w) {
			t.Errorf("output holds %q:\n%s", w, out)
		}
	}
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
	// keyless --version, as kubectl's and helm's users expect it.
	code, out, _ = run(t.Context(), t, "--version")
	if want := "keyless " + version.Version() + "\n"; code != 0 || out != want {
		t.Fatalf("keyless --version: exit %d, %q; want %q", code, out, want)
	}
}

// TestUnknownCommandFails: a misspelled command fails with cobra's "Did you
// mean this?" at every level, not only at the root; a group run alone still
// prints its help and succeeds.
func TestUnknownCommandFails(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr when code != 0, else in stdout
	}{
		{args: []string{"frobnicate"}, code: 1, want: `unknown command "frobnicate" for "keyless"`},
		{args: []string{"verison"}, code: 1, want: "Did you mean this?\n\tversion"}, //nolint:misspell // the misspelling is the test
		{args: []string{"audit", "clustr"}, code: 1, want: "unknown command \"clustr\" for \"keyless audit\"\n\nDid you mean this?\n\tcluster"},
		{args: []string{"oidc", "confg"}, code: 1, want: "unknown command \"confg\" for \"keyless oidc\"\n\nDid you mean this?\n\tconfig"},
		{args: []string{"get", "applicaton"}, code: 1, want: "unknown command \"applicaton\" for \"keyless get\"\n\nDid you mean this?\n\tapplications"}, //nolint:misspell // the misspelling is the test
		{args: []string{"secret", "encrpyt", "f.yaml"}, code: 1, want: "Did you mean this?\n\tencrypt"},                                                  //nolint:misspell // the misspelling is the test
		{args: []string{"import", "argo"}, code: 1, want: "Did you mean this?\n\targocd"},
		{args: []string{"completion", "bsh"}, code: 1, want: "Did you mean this?\n\tbash"},
		{args: []string{"oidc", "nothing-like-it"}, code: 1, want: `unknown command "nothing-like-it" for "keyless oidc"`},
		{args: []string{"audit"}, want: "Available Commands:"},
		{args: []string{"oidc", "--help"}, want: "Available Commands:"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(t.Context(), t, tc.args...)
			if tc.code != 0 {
				out = errOut
			}
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
}
