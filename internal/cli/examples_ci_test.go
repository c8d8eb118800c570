package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/install"
)

// keylessImage is the image name `make image REGISTRY=ghcr.io/keyless-cd/keyless`
// publishes: the only keyless image examples and config may name.
const keylessImage = install.ImageRepository

// ciFiles are the files that show a user how to run keyless.
func ciFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, root := range []string{"../../examples", "../../config"} {
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// TestExamplesNameOnlyWhatIsBuilt: every keyless image in examples/ and
// config/ is the one make image produces, and no example runs keyless in a
// job without installing it (go install of cmd/keyless) or using that image.
func TestExamplesNameOnlyWhatIsBuilt(t *testing.T) {
	imageRef := regexp.MustCompile(`(?m)^\s*-?\s*image:\s*["']?([^\s"'#]+)`)
	for _, f := range ciFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range imageRef.FindAllStringSubmatch(text, -1) {
			ref := m[1]
			if strings.Contains(ref, "keyless") {
				name, _, _ := strings.Cut(strings.Split(ref, "@")[0], ":")
				if hostPort := strings.Count(ref, ":") > 1; hostPort {
					name = ref[:strings.LastIndex(strings.Split(ref, "@")[0], ":")]
				}
				if name != keylessImage {
					t.Errorf("%s: image %s is not %s, which make image builds", f, ref, keylessImage)
				}
			}
		}
		if strings.Contains(f, "/examples/") && regexp.MustCompile(`(?m)^\s*-?\s*keyless \w`).MatchString(text) &&
			!strings.Contains(text, "go install github.com/keyless-cd/keyless/cmd/keyless@") && !strings.Contains(text, keylessImage) {
			t.Errorf("%s runs keyless but neither installs it nor uses %s", f, keylessImage)
		}
	}
}

// shellOperator is a shell redirect, pipe or list operator between words.
var shellOperator = regexp.MustCompile(`\s(\|\||&&|;|\||>>?|<)\s`)

// TestExampleInvocationsParse: every `keyless …` command line in the CI
// examples names a real command and only flags it has.
func TestExampleInvocationsParse(t *testing.T) {
	var checked int
	for _, f := range ciFiles(t) {
		if !strings.Contains(f, "/examples/") {
			continue
		}
		for _, line := range keylessInvocations(t, f) {
			// The command ends where the shell's next operator starts
			// (a redirect, a pipe, || test $? -eq 1).
			cmdline := shellOperator.Split(line, 2)[0]
			args := strings.Fields(cmdline)[1:]
			root := NewRootCommand(IOStreams{})
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == root {
				t.Errorf("%s: %q: no such command: %v", f, line, err)
				continue
			}
			cmd.InitDefaultHelpFlag()
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: %q: %v", f, line, err)
			}
			checked++
		}
	}
	if checked < 4 {
		t.Fatalf("only %d keyless invocations found in the examples", checked)
	}
}

// keylessInvocations returns file's keyless command lines, continuation
// lines (a trailing \ or a YAML folded continuation) joined; a commented-out
// script line (# - keyless …) is a variant users copy, so it must parse too.
func keylessInvocations(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	start := regexp.MustCompile(`^\s*(#\s*-\s+|-\s+)?(keyless \w.*)$`)
	var out []string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		m := start.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		cmd := strings.TrimSuffix(strings.TrimSpace(m[2]), "\\")
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		for i+1 < len(lines) {
			next := strings.TrimLeft(strings.TrimLeft(lines[i+1], " "), "#")
			nextIndent := len(lines[i+1]) - len(strings.TrimLeft(lines[i+1], " "))
			trimmed := strings.TrimSpace(next)
			if trimmed == "" || strings.HasPrefix(trimmed, "- ") || (nextIndent <= indent && !strings.HasPrefix(trimmed, "--")) {
				break
			}
			cmd += " " + strings.TrimSuffix(trimmed, "\\")
			i++
		}
		// Quoted values ("CI <ci@example.com>") are one argument for the shell.
		cmd = regexp.MustCompile(`"[^"]*"`).ReplaceAllStringFunc(cmd, func(q string) string { return strings.ReplaceAll(q, " ", "_") })
		out = append(out, cmd)
	}
	return out
}
