package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasHelp: every command a user can run says what it does and
// shows an example.
func TestEveryCommandHasHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Name() != "help" && !strings.HasPrefix(c.CommandPath(), "keyless completion") {
			if c.Short == "" || c.Example == "" {
				t.Errorf("%s: Short %q, Example %q", c.CommandPath(), c.Short, c.Example)
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(NewRootCommand(IOStreams{}))
}

// TestCompletion: `keyless completion bash|zsh|fish` prints a script that
// completes keyless's commands; bash accepts the bash one.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := run(t.Context(), t, "completion", shell)
		if code != 0 || !strings.Contains(out, "keyless") || len(out) < 500 {
			t.Fatalf("completion %s: exit %d, %d bytes, %s", shell, code, len(out), errOut)
		}
		if shell == "bash" {
			if _, err := exec.LookPath("bash"); err != nil {
				continue
			}
			f := filepath.Join(t.TempDir(), "keyless.bash")
			if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.CommandContext(t.Context(), "bash", "-n", f).CombinedOutput(); err != nil {
				t.Fatalf("bash -n on the completion script: %v\n%s", err, b)
			}
		}
	}
	// Completing a command name goes through cobra's __complete.
	code, out, _ := run(t.Context(), t, "__complete", "aud")
	if code != 0 || !strings.Contains(out, "audit") {
		t.Fatalf("__complete aud: exit %d\n%s", code, out)
	}
}
