package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/version"
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
// job without installing the release's binary, checked against its
// checksums.txt (installsVerifiedRelease), or using that image.
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
		if strings.Contains(f, "/examples/") && regexp.MustCompile(`(?m)^\s*-?\s*keyless \w`).MatchString(text) {
			if err := installsVerifiedRelease(text); err != nil {
				t.Errorf("%s runs keyless but does not install a verified release: %v", f, err)
			}
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

// releaseBase is where a release's files are downloaded from
// (.github/workflows/release.yml uploads them there).
const releaseBase = "https://github.com/keyless-cd/keyless/releases/download/$KEYLESS_VERSION"

// installsVerifiedRelease: a job installs keyless by downloading the pinned
// release's keyless-OS-ARCH.tar.gz (make release's name) and checksums.txt
// and checking the archive with sha256sum -c before unpacking it, never by
// compiling it (go install: minutes and ~200 MB of build per job), and pins
// KEYLESS_VERSION to a release tag.
func installsVerifiedRelease(text string) error {
	if strings.Contains(text, "go install github.com/keyless-cd/keyless") {
		return errors.New("it compiles keyless with go install; download the release's binary (docs/ci.md)")
	}
	if m := regexp.MustCompile(`KEYLESS_VERSION:\s*(\S+)`).FindStringSubmatch(text); m == nil || !version.IsRelease(m[1]) {
		return fmt.Errorf("KEYLESS_VERSION is %v, want a release tag vX.Y.Z", m)
	}
	for _, want := range []string{`base="` + releaseBase + `"`, `"$base/keyless-$platform.tar.gz"`, `"$base/checksums.txt"`} {
		if !strings.Contains(text, want) {
			return fmt.Errorf("it does not download %s", want)
		}
	}
	check := regexp.MustCompile(`grep " keyless-\$platform\.tar\.gz\\\$" checksums\.txt \| sha256sum -c -`).FindAllStringIndex(text, -1)
	unpack := regexp.MustCompile(`tar -xzf "[^"]*keyless-\$platform\.tar\.gz" -C \S+ keyless`).FindAllStringIndex(text, -1)
	if len(check) == 0 || len(check) != len(unpack) {
		return fmt.Errorf("%d checksum checks (grep \" keyless-$platform.tar.gz\\$\" checksums.txt | sha256sum -c -) for %d unpackings", len(check), len(unpack))
	}
	for i := range check {
		if unpack[i][0] < check[i][1] {
			return errors.New("it unpacks the archive before checking it")
		}
	}
	return nil
}

// TestExampleInstallStepsVerify runs each example's install step (from
// platform= to the tar that unpacks keyless) against a local server holding
// a release: it installs keyless, and when the archive was tampered with
// it fails and installs nothing.
func TestExampleInstallStepsVerify(t *testing.T) {
	const v = "v0.1.0"
	platform := "linux-" + runtime.GOARCH
	good := tarGz(t, "#!/bin/sh\necho keyless from the release\n")
	bad := tarGz(t, "#!/bin/sh\necho tampered\n")
	sum := sha256.Sum256(good)
	checksums := fmt.Sprintf("%x  keyless-%s.tar.gz\n%x  keyless-darwin-arm64.tar.gz\n", sum, platform, sha256.Sum256(nil))
	var archive []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/" + v + "/checksums.txt":
			_, _ = io.WriteString(w, checksums)
		case "/" + v + "/keyless-" + platform + ".tar.gz":
			_, _ = w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	var ran int
	for _, f := range ciFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, step := range installSteps(string(b)) {
			tool := "curl"
			if strings.Contains(step, "wget ") {
				tool = "wget"
			}
			if _, err := exec.LookPath(tool); err != nil {
				t.Logf("%s step %d: no %s here, not run", f, i, tool)
				continue
			}
			for _, tc := range []struct {
				archive []byte
				ok      bool
			}{{good, true}, {bad, false}} {
				archive = tc.archive
				dir, bin := t.TempDir(), t.TempDir()
				script := strings.NewReplacer(strings.Replace(releaseBase, "$KEYLESS_VERSION", "", 1), srv.URL+"/",
					"/usr/local/bin", bin, "/tmp", dir).Replace(step)
				cmd := exec.CommandContext(t.Context(), "sh", "-euc", script)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "KEYLESS_VERSION="+v)
				out, err := cmd.CombinedOutput()
				installed := filepath.Join(bin, "keyless")
				if !strings.Contains(step, "/usr/local/bin") {
					installed = filepath.Join(dir, "bin", "keyless")
				}
				_, statErr := os.Stat(installed)
				if tc.ok && (err != nil || statErr != nil) {
					t.Errorf("%s step %d: %v, %v\n%s\n%s", f, i, err, statErr, script, out)
				}
				if !tc.ok && (err == nil || statErr == nil) {
					t.Errorf("%s step %d installed a tampered archive (exit %v)\n%s", f, i, err, out)
				}
			}
			ran++
		}
	}
	if ran < 3 {
		t.Errorf("ran %d install steps, want the examples' (at least 3)", ran)
	}
}

// installSteps returns the shell lines of each install step in a CI file:
// from the line setting platform= to the tar unpacking keyless, YAML
// indentation removed.
func installSteps(text string) []string {
	var steps []string
	var cur []string
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "platform=") {
			cur = []string{}
		}
		if cur == nil {
			continue
		}
		cur = append(cur, trimmed)
		if strings.Contains(trimmed, "tar -xzf") {
			steps = append(steps, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	return steps
}

// tarGz is a release archive holding keyless, the script.
func tarGz(t *testing.T, script string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "keyless", Mode: 0o755, Size: int64(len(script))}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, script); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
