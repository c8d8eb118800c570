package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/celhealth"
)

// keyless import argocd reads argocd-cm from stdin: the entries on stdout
// are a --health-check-exprs list, the reports on stderr.
func TestImportArgoCDConfigMap(t *testing.T) {
	cm, err := os.ReadFile("../argocd/testdata/argocd-cm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Run(t.Context(), []string{"import", "argocd", "-"}, IOStreams{In: bytes.NewReader(cm), Out: &out, ErrOut: &errOut}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var entries []celhealth.Expressions
	if err := yaml.UnmarshalStrict(out.Bytes(), &entries); err != nil || len(entries) == 0 {
		t.Fatalf("stdout is not a healthCheckExprs list (%v):\n%s", err, out.String())
	}
	for _, want := range []string{
		"note: resource.customizations.health.cert-manager.io_Certificate: cert-manager.io/Certificate is covered by keyless's built-in health library",
		"note: resource.customizations.health.monitoring.coreos.com_Prometheus: monitoring.coreos.com/Prometheus converted from its Lua",
		"warning: resource.customizations.health.argoproj.io_Application: argoproj.io/Application cannot be converted automatically",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	if strings.Contains(out.String(), "note:") || strings.Contains(errOut.String(), "apiVersion:") {
		t.Errorf("reports and entries are mixed up\nstdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}
}
