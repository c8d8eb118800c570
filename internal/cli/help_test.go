package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/install"
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

// fixedValueFlags are the flags that take one of a fixed set of values
// wherever they appear; each must complete its values (flagValues).
var fixedValueFlags = []string{"output", "format", "provider", "fail-on", "pod-security", "log-level"}

// fileOutput are the commands whose -o names a file to write, not a format.
var fileOutput = map[string]bool{"keyless secret encrypt": true, "keyless secret decrypt": true, "keyless kubeconfig": true}

// TestFlagCompletion: every fixed-value flag completes its values, every
// command with the connection flags completes namespaces and the
// kubeconfig's contexts, clusters and users, and every command taking an
// APP completes Application names; flagValues names only real commands
// and flags.
func TestFlagCompletion(t *testing.T) {
	root := NewRootCommand(IOStreams{})
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		seen[c.CommandPath()] = true
		for _, name := range fixedValueFlags {
			if c.Flags().Lookup(name) == nil || (name == "output" && fileOutput[c.CommandPath()]) {
				continue
			}
			if _, ok := c.GetFlagCompletionFunc(name); !ok {
				t.Errorf("%s --%s: no completion of its values (add it to flagValues)", c.CommandPath(), name)
			}
		}
		for name := range flagValues[c.CommandPath()] {
			if c.Flags().Lookup(name) == nil {
				t.Errorf("flagValues: %s has no --%s", c.CommandPath(), name)
			}
		}
		if c.Flags().Lookup("as") != nil {
			for _, name := range []string{"namespace", "namespaces", "context", "cluster", "user"} {
				if _, ok := c.GetFlagCompletionFunc(name); !ok && c.Flags().Lookup(name) != nil {
					t.Errorf("%s --%s: no completion", c.CommandPath(), name)
				}
			}
		}
		if strings.Contains(c.Use, " APP") && c.ValidArgsFunction == nil {
			t.Errorf("%s takes APP but does not complete Application names", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	for path := range flagValues {
		if !seen[path] {
			t.Errorf("flagValues: no command %q", path)
		}
	}

	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args    []string
		want    []string
		notWant []string
	}{
		{args: []string{"get", "apps", "-o", ""}, want: []string{"\nwide\n", "\njson\n", "\nyaml\n", "\nname\n", "\njsonpath\n", "\ncustom-columns\n", ":4\n"}},
		{args: []string{"history", "web", "-o", ""}, want: []string{"\ntext\n", "\njson\n"}, notWant: []string{"yaml"}},
		{args: []string{"audit", "cluster", "--fail-on", ""}, want: []string{"low\nmedium\nhigh\ncritical\n"}},
		{args: []string{"audit", "repo", "--format", ""}, want: []string{"\nsarif\n", "\ncodequality\n"}},
		{args: []string{"install", "--pod-security", ""}, want: []string{"restricted\nbaseline\nprivileged\n"}},
		{args: []string{"preview", "--format", ""}, want: []string{"\nmarkdown\n"}},
		{args: []string{"sync", "--kubeconfig", kc, "--context", ""}, want: []string{"a\nb\n:4\n"}},
		{args: []string{"get", "apps", "--kubeconfig", kc, "--cluster", ""}, want: []string{"one\ntwo\n"}},
		{args: []string{"ui", "--kubeconfig", kc, "--user", ""}, want: []string{"alice\nbob\n"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(t.Context(), t, append([]string{"__complete"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			wantOutput(t, "\n"+out, tc.want, tc.notWant)
		})
	}
}

// TestCompletionFromCluster: __complete reads the cluster with the
// connection flags typed so far: Application names for APP, namespaces for
// -n and for the next item of --namespaces.
func TestCompletionFromCluster(t *testing.T) {
	ctx := t.Context()
	c, _ := clusterWithApps(t, "web", "api")
	kc := "--kubeconfig=" + c.KubeconfigPath
	for _, tc := range []struct {
		args    []string
		want    []string
		notWant []string
	}{
		{args: []string{"sync", kc, "-n", "team-a", ""}, want: []string{"\napi\nweb\n:4\n"}},
		{args: []string{"history", "-n", "team-a", kc, ""}, want: []string{"\napi\nweb\n"}},
		{args: []string{"rollback", kc, "--namespace=team-a", ""}, want: []string{"\napi\nweb\n"}},
		{args: []string{"get", "apps", kc, "-n", "team-a", ""}, want: []string{"\napi\nweb\n"}},
		{args: []string{"get", "apps", kc, "-n", "team-a", "web", ""}, notWant: []string{"api", "web"}},
		{args: []string{"sync", kc, "-n", "kube-system", ""}, notWant: []string{"api", "web"}},
		{args: []string{"get", "apps", kc, "-n", ""}, want: []string{"\nteam-a\n", "\nkube-system\n", "\n" + install.DefaultControllerNamespace + "\n"}},
		{args: []string{"install", kc, "--namespaces", "team-a,"}, want: []string{"\nteam-a,kube-system\n"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(ctx, t, append([]string{"__complete"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			wantOutput(t, "\n"+out, tc.want, tc.notWant)
		})
	}
}
