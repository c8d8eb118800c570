package devcli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/cli"
)

// run runs a keyless-dev command line in-process.
func run(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(ctx, args, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

// TestEveryDevCommandHasHelp: keyless-dev's commands say what they do and
// show an example, like keyless's.
func TestEveryDevCommandHasHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Name() != "help" && !strings.HasPrefix(c.CommandPath(), "keyless-dev completion") {
			if c.Short == "" || c.Example == "" {
				t.Errorf("%s: Short %q, Example %q", c.CommandPath(), c.Short, c.Example)
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(NewRootCommand(cli.IOStreams{}))
	code, out, errOut := run(t.Context(), t, "--help")
	for _, sub := range []string{"localcluster", "dev-issuer", "demo"} {
		if code != 0 || !strings.Contains(out, sub) {
			t.Fatalf("keyless-dev --help: exit %d, no %s:\n%s%s", code, sub, out, errOut)
		}
	}
}

func TestLocalclusterUpMissingAssets(t *testing.T) {
	code, out, errOut := run(t.Context(), t, "localcluster", "up", "--assets", "/nonexistent")
	if code == 0 {
		t.Fatal("exit 0 with missing binaries")
	}
	if strings.Contains(out, "ready:") {
		t.Fatalf("printed ready with missing binaries: %q", out)
	}
	for _, want := range []string{"kube-apiserver", "etcd", "/nonexistent", "make k8s-bins"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q does not mention %q", errOut, want)
		}
	}
}
