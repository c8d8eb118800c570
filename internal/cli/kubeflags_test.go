package cli

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

const testKubeconfig = `apiVersion: v1
kind: Config
current-context: a
contexts:
- name: a
  context: {cluster: one, user: alice, namespace: team-a}
- name: b
  context: {cluster: two, user: bob}
clusters:
- name: one
  cluster: {server: "https://one.example:6443"}
- name: two
  cluster: {server: "https://two.example:6443"}
users:
- name: alice
  user: {token: alice-token}
- name: bob
  user: {token: bob-token}
`

// TestKubeFlags: kubectl's connection flags (cli-runtime's ConfigFlags)
// reach the client configuration; the namespace is -n, else the context's,
// never "default"; with no cluster configured the error says what to do.
func TestKubeFlags(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		args      []string
		host      string
		token     string
		namespace string // "" : targetNamespace refuses
		check     func(t *testing.T, f *kubeFlags)
	}{
		{name: "kubeconfig", args: []string{"--kubeconfig", kc}, host: "https://one.example:6443", token: "alice-token", namespace: "team-a"},
		{name: "-n", args: []string{"--kubeconfig", kc, "-n", "team-b"}, host: "https://one.example:6443", token: "alice-token", namespace: "team-b"},
		{name: "--context without a namespace", args: []string{"--kubeconfig", kc, "--context", "b"}, host: "https://two.example:6443", token: "bob-token"},
		{name: "--cluster --user", args: []string{"--kubeconfig", kc, "--cluster", "two", "--user", "bob"}, host: "https://two.example:6443", token: "bob-token", namespace: "team-a"},
		{name: "--server --token", args: []string{"--kubeconfig", kc, "-s", "https://three.example", "--token", "t0k", "--insecure-skip-tls-verify"}, host: "https://three.example", token: "t0k", namespace: "team-a",
			check: func(t *testing.T, f *kubeFlags) {
				cfg, _ := f.restConfig()
				if !cfg.Insecure {
					t.Error("--insecure-skip-tls-verify not applied")
				}
			}},
		{name: "impersonation and timeout", args: []string{"--kubeconfig", kc, "--as", "carol", "--as-group", "devs", "--as-group", "ops", "--as-uid", "42", "--request-timeout", "7s"}, host: "https://one.example:6443", token: "alice-token", namespace: "team-a",
			check: func(t *testing.T, f *kubeFlags) {
				cfg, _ := f.restConfig()
				if cfg.Impersonate.UserName != "carol" || cfg.Impersonate.UID != "42" || !slices.Equal(cfg.Impersonate.Groups, []string{"devs", "ops"}) || cfg.Timeout != 7*time.Second {
					t.Errorf("impersonate %+v timeout %s", cfg.Impersonate, cfg.Timeout)
				}
			}},
		{name: "--certificate-authority", args: []string{"--kubeconfig", kc, "--certificate-authority", kc}, host: "https://one.example:6443", token: "alice-token", namespace: "team-a",
			check: func(t *testing.T, f *kubeFlags) {
				cfg, _ := f.restConfig()
				if cfg.CAFile != kc {
					t.Errorf("CAFile %q", cfg.CAFile)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &kubeFlags{}
			fl := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.addFlags(fl)
			if err := fl.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.restConfig()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != tc.host || cfg.BearerToken != tc.token || cfg.UserAgent != "keyless" {
				t.Errorf("host %q token %q user agent %q", cfg.Host, cfg.BearerToken, cfg.UserAgent)
			}
			ns, err := f.targetNamespace()
			if ns != tc.namespace || (tc.namespace == "") != (err != nil) {
				t.Errorf("namespace %q, %v; want %q", ns, err, tc.namespace)
			}
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}

	t.Run("no cluster", func(t *testing.T) {
		t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
		t.Setenv("KUBERNETES_SERVICE_HOST", "")
		if _, err := kubeFlagsFor("").restConfig(); !errors.Is(err, errNoCluster) {
			t.Fatalf("got %v, want errNoCluster", err)
		}
	})
	t.Run("install has no -n", func(t *testing.T) {
		fl := pflag.NewFlagSet("test", pflag.ContinueOnError)
		(&kubeFlags{}).addKubeconfigFlags(fl)
		if fl.Lookup("namespace") != nil || fl.Lookup("kubeconfig") == nil || fl.Lookup("as") == nil {
			t.Fatal("addKubeconfigFlags: want the connection flags without -n")
		}
	})
}
