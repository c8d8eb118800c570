// Package testdeps tests hack/install-test-deps.sh, the step of make test
// that installs the system packages the tests need on a fresh machine:
// which packages it asks apt-get for given what the machine lacks, how it
// gets root, and what it says when it cannot install.
package testdeps

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// machine is a PATH of its own: the named commands exist (an exit-0
// script each), and apt-get and sudo, when present, log their arguments.
type machine struct {
	dir, log, sshd string
}

func newMachine(t *testing.T, uid string, commands ...string) *machine {
	t.Helper()
	m := &machine{dir: t.TempDir(), log: filepath.Join(t.TempDir(), "calls"), sshd: filepath.Join(t.TempDir(), "no-sshd")}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(m.dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("id", "echo "+uid)
	for _, c := range commands {
		switch c {
		case "apt-get":
			write(c, `echo "apt-get $*" >> `+m.log)
		case "sudo":
			write(c, `echo "sudo" >> `+m.log+`; exec "$@"`)
		case "sshd":
			m.sshd = filepath.Join(m.dir, "sshd")
			write(c, "exit 0")
		default:
			write(c, "exit 0")
		}
	}
	return m
}

func (m *machine) run(t *testing.T) (string, []string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "/bin/bash", "../install-test-deps.sh")
	cmd.Env = []string{"PATH=" + m.dir, "KEYLESS_SSHD=" + m.sshd}
	out, err := cmd.CombinedOutput()
	calls, _ := os.ReadFile(m.log)
	return string(out), strings.FieldsFunc(string(calls), func(r rune) bool { return r == '\n' }), err
}

func TestInstallTestDeps(t *testing.T) {
	everything := []string{"gcc", "prometheus", "promtool", "sshd", "chromium"}
	all := "apt-get install -y -qq gcc libc6-dev prometheus openssh-server chromium fonts-dejavu-core"
	for _, tc := range []struct {
		name      string
		uid       string
		commands  []string
		wantCalls []string
		wantOut   string
		wantFail  bool
	}{
		{name: "nothing missing installs nothing", uid: "1000", commands: append([]string{"apt-get"}, everything...)},
		{name: "a fresh machine as root", uid: "0", commands: []string{"apt-get"},
			wantCalls: []string{"apt-get update -qq", all}, wantOut: "installing what the tests need: gcc libc6-dev prometheus openssh-server chromium fonts-dejavu-core"},
		{name: "only what is missing", uid: "0", commands: []string{"apt-get", "gcc", "sshd", "chromium", "prometheus"},
			wantCalls: []string{"apt-get update -qq", "apt-get install -y -qq prometheus"}}, // promtool missing
		{name: "a user with sudo", uid: "1000", commands: []string{"apt-get", "sudo", "gcc", "prometheus", "promtool", "chromium"},
			wantCalls: []string{"sudo", "apt-get update -qq", "sudo", "apt-get install -y -qq openssh-server"}},
		{name: "a user without sudo is told what to install", uid: "1000", commands: []string{"apt-get"}, wantFail: true,
			wantOut: "missing gcc libc6-dev prometheus openssh-server chromium fonts-dejavu-core: install them (apt-get install gcc libc6-dev prometheus openssh-server chromium fonts-dejavu-core) or run make test as root"},
		{name: "no apt-get", uid: "0", wantFail: true, wantOut: "this script installs through apt-get (Debian/Ubuntu); install them with your package manager"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, tc.uid, tc.commands...)
			out, calls, err := m.run(t)
			if (err != nil) != tc.wantFail {
				t.Fatalf("exit error %v, want failure %v\n%s", err, tc.wantFail, out)
			}
			if !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("calls %q, want %q\n%s", calls, tc.wantCalls, out)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("output %q lacks %q", out, tc.wantOut)
			}
		})
	}
}
