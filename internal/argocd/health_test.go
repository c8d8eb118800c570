package argocd

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/celhealth"
)

func convertHealthFile(t *testing.T) *HealthResult {
	t.Helper()
	data, err := os.ReadFile("testdata/argocd-cm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !IsConfigMap(data) {
		t.Fatal("IsConfigMap(argocd-cm) = false")
	}
	res, err := ConvertHealth(data)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func entriesByKind(t *testing.T, res *HealthResult) map[string]celhealth.Expressions {
	t.Helper()
	var list []celhealth.Expressions
	if err := yaml.UnmarshalStrict(res.Entries, &list); err != nil {
		t.Fatalf("the output is not a healthCheckExprs list: %v\n%s", err, res.Entries)
	}
	out := map[string]celhealth.Expressions{}
	for _, e := range list {
		out[e.APIVersion+" "+e.Kind] = e
	}
	if len(out) != len(list) {
		t.Fatalf("duplicate entries:\n%s", res.Entries)
	}
	return out
}

func mentions(list []string, parts ...string) bool {
	for _, s := range list {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(s, p)
		}
		if all {
			return true
		}
	}
	return false
}

func TestConvertHealthArgoCDConfigMap(t *testing.T) {
	res := convertHealthFile(t)
	got := entriesByKind(t, res)
	want := []string{
		"monitoring.coreos.com/VERSION Prometheus", // converted
		"example.com/VERSION MyResource",           // converted (resource.customizations)
		"batch.example.org/VERSION Workflow",       // converted (phase)
		"argoproj.io/VERSION Application",          // skeleton
		"uptimerobot.com/VERSION Contact",          // skeleton
		"pkg.crossplane.io/VERSION Provider",       // skeleton: not Ready/Synced
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("no entry %q in\n%s", k, res.Entries)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d entries, want %d (the library's kinds print nothing):\n%s", len(got), len(want), res.Entries)
	}

	// Covered by the library: said, not printed.
	for _, k := range []string{"cert-manager.io_Certificate", "postgresql.cnpg.io_Cluster"} {
		if !mentions(res.Notes, k, "covered by keyless's built-in health library") {
			t.Errorf("no note that %s is covered by the library: %q", k, res.Notes)
		}
	}
	if !mentions(res.Notes, `"*.upbound.io/*"`, "Crossplane", "once per group") {
		t.Errorf("no note for the Crossplane wildcard: %q", res.Notes)
	}
	// Not converted: a warning naming the key, and a skeleton refused until written.
	for _, k := range []string{"resource.customizations.health.argoproj.io_Application", "resource.customizations.health.uptimerobot.com_Contact", `resource.customizations "pkg.crossplane.io/Provider"`} {
		if !mentions(res.Warnings, k, "cannot be converted automatically") {
			t.Errorf("no warning naming %s: %q", k, res.Warnings)
		}
	}
	for _, k := range []string{"argoproj.io/VERSION Application", "uptimerobot.com/VERSION Contact"} {
		e := got[k]
		if e.Current != "" || e.Failed != "" || e.InProgress != "" {
			t.Errorf("%s: a skeleton has no expressions, got %+v", k, e)
		}
		if _, err := celhealth.Compile([]celhealth.Expressions{e}); !errors.Is(err, celhealth.ErrInvalid) {
			t.Errorf("%s: a skeleton must be refused until written, Compile: %v", k, err)
		}
	}
	if !strings.Contains(string(res.Entries), "hs.status = obj.status.health.status") || !strings.Contains(string(res.Entries), "# TODO: write current") {
		t.Errorf("the skeleton shows the Lua and a TODO as comments:\n%s", res.Entries)
	}
	if !mentions(res.Warnings, "resource.customizations.ignoreDifferences.apps_Deployment", "not a health customisation") ||
		!mentions(res.Warnings, `"apps/Deployment"`, "ignoreDifferences") {
		t.Errorf("other customisations are named: %q", res.Warnings)
	}
	if !mentions(res.Notes, "2 other settings") {
		t.Errorf("other settings are counted: %q", res.Notes)
	}

	// The converted entries compile and judge as their Lua did.
	var converted []celhealth.Expressions
	for _, k := range want[:3] {
		converted = append(converted, got[k])
	}
	checker, err := celhealth.Compile(converted)
	if err != nil {
		t.Fatalf("converted entries do not compile: %v\n%s", err, res.Entries)
	}
	for _, tc := range []struct {
		obj  string
		want status.Status
	}{
		{`{apiVersion: example.com/v1, kind: MyResource, metadata: {name: a}, status: {conditions: [{type: Ready, status: "True"}]}}`, status.CurrentStatus},
		{`{apiVersion: example.com/v1, kind: MyResource, metadata: {name: a}, status: {conditions: [{type: Other, status: "False"}, {type: Ready, status: "False"}]}}`, status.FailedStatus},
		{`{apiVersion: example.com/v1, kind: MyResource, metadata: {name: a}, status: {conditions: [{type: Ready, status: Unknown}]}}`, status.InProgressStatus},
		{`{apiVersion: example.com/v1, kind: MyResource, metadata: {name: a}}`, status.InProgressStatus},
		{`{apiVersion: monitoring.coreos.com/v1, kind: Prometheus, metadata: {name: a}, status: {conditions: [{type: Available, status: "True"}]}}`, status.CurrentStatus},
		{`{apiVersion: monitoring.coreos.com/v1, kind: Prometheus, metadata: {name: a}, status: {conditions: [{type: Available, status: "False"}]}}`, status.InProgressStatus},
		{`{apiVersion: batch.example.org/v1, kind: Workflow, metadata: {name: a}, status: {phase: Succeeded}}`, status.CurrentStatus},
		{`{apiVersion: batch.example.org/v1, kind: Workflow, metadata: {name: a}, status: {phase: Failed}}`, status.FailedStatus},
		{`{apiVersion: batch.example.org/v1, kind: Workflow, metadata: {name: a}, status: {phase: Running}}`, status.InProgressStatus},
	} {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(tc.obj), &u.Object); err != nil {
			t.Fatal(err)
		}
		st, handled, err := checker.Status(u)
		if err != nil || !handled || st != tc.want {
			t.Errorf("%s: %s handled=%v err=%v, want %s", tc.obj, st, handled, err, tc.want)
		}
	}
}

func TestConvertHealthCrossplaneGroup(t *testing.T) {
	res, err := ConvertHealth([]byte(`apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm}
data:
  resource.customizations.health.s3.aws.upbound.io_Bucket: |
    hs = {status = "Healthy"}
    return hs
`))
	if err != nil {
		t.Fatal(err)
	}
	e := entriesByKind(t, res)["s3.aws.upbound.io/VERSION Bucket"]
	if e.Current != celhealth.CrossplaneReadySynced.Current || e.Failed != celhealth.CrossplaneReadySynced.Failed {
		t.Errorf("a provider's managed resource gets the library's Crossplane entry, got %+v\n%s", e, res.Entries)
	}
	if !mentions(res.Notes, "s3.aws.upbound.io_Bucket", "Crossplane") {
		t.Errorf("notes: %q", res.Notes)
	}
}

func TestConvertHealthRefusesOtherInput(t *testing.T) {
	for _, in := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-rbac-cm}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: argocd-cm}\n",
		"resource.customizations: |\n  x/Y: {}\n",
		strings.Repeat("#", MaxInput+1),
	} {
		if _, err := ConvertHealth([]byte(in)); err == nil {
			t.Errorf("ConvertHealth(%.40q) = nil error", in)
		}
	}
}

// A Lua script is hostile input: whatever it holds stays in its comments.
func TestConvertHealthLuaStaysInComments(t *testing.T) {
	lua := "hs = {}\r- apiVersion: evil.example/v1\u2028  current: 'true'\u0085kind: X\nreturn hs\n"
	b, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "argocd-cm"},
		"data": map[string]string{"resource.customizations.health.example.com_Widget": lua}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ConvertHealth(b)
	if err != nil {
		t.Fatal(err)
	}
	got := entriesByKind(t, res)
	if len(got) != 1 || got["example.com/VERSION Widget"].Current != "" {
		t.Errorf("the Lua leaked out of its comments: %v\n%s", got, res.Entries)
	}
}

func TestRecognise(t *testing.T) {
	conds := func(body string) string {
		return "hs = {}\nif obj.status ~= nil then\nfor i, c in ipairs(obj.status.conditions) do\n" + body + "\nend\nend\nhs.status = \"Progressing\"\nreturn hs\n"
	}
	rule := func(typ, st, health string) string {
		return `if c.type == "` + typ + `" and c.status == "` + st + `" then hs.status = "` + health + `"; hs.message = c.message; return hs end` + "\n"
	}
	ok := conds(rule("Ready", "False", "Degraded") + rule("Ready", "True", "Healthy") + rule("Ready", "Unknown", "Progressing"))
	e, how, err := recognise(ok)
	if err != nil {
		t.Fatalf("recognise: %v", err)
	}
	if e.Current != "status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == 'True')" ||
		e.Failed != "status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == 'False')" || e.InProgress != "" {
		t.Errorf("recognise = %+v", e)
	}
	if how != "Ready=False: Degraded, Ready=True: Healthy, Ready=Unknown: Progressing, otherwise Progressing" {
		t.Errorf("how = %q", how)
	}

	for name, lua := range map[string]string{
		// Lua decides by whichever condition comes first; CEL cannot.
		"two condition types": conds(rule("Ready", "True", "Healthy") + rule("Synced", "False", "Degraded")),
		"default Healthy":     strings.Replace(conds(rule("Ready", "False", "Degraded")), `hs.status = "Progressing"`, `hs.status = "Healthy"`, 1),
		"Suspended":           conds(rule("Ready", "True", "Healthy") + rule("Paused", "True", "Suspended")),
		"no Healthy":          conds(rule("Ready", "False", "Degraded")),
		"type only":           conds(`if c.type == "Ready" then hs.status = "Healthy"; return hs end`),
		"status from a field": conds(`if c.type == "Ready" and c.status == "True" then hs.status = c.reason; return hs end`),
		"elseif":              "hs = {}\nif obj.status.phase == \"A\" then\nhs.status = \"Healthy\"\nelseif obj.status.phase == \"B\" then\nhs.status = \"Degraded\"\nend\nreturn hs\n",
		"or":                  "hs = {}\nif obj.status.phase == \"A\" or obj.status.phase == \"B\" then hs.status = \"Healthy\"; return hs end\nhs.status = \"Progressing\"\nreturn hs\n",
		"not":                 "hs = {}\nif not (obj.status.phase == \"A\") then hs.status = \"Healthy\"; return hs end\nhs.status = \"Progressing\"\nreturn hs\n",
		"set without return":  "hs = {}\nhs.status = \"Progressing\"\nif obj.status.phase == \"A\" then hs.status = \"Healthy\" end\nreturn hs\n",
		"guard only":          "hs = {}\nif obj.status ~= nil then hs.status = \"Healthy\"; return hs end\nhs.status = \"Progressing\"\nreturn hs\n",
		"loop sets status":    "hs = {}\nhs.status = \"Progressing\"\nfor i, c in ipairs(obj.status.conditions) do\nif c.type == \"Ready\" and c.status == \"True\" then hs.status = \"Healthy\" end\nend\nreturn hs\n",
		"other field":         "hs = {}\nif obj.spec.paused == \"true\" then hs.status = \"Healthy\"; return hs end\nhs.status = \"Progressing\"\nreturn hs\n",
		"function":            "function f() return 1 end\n",
		"long comment":        "--[[ x ]]\nhs = {}\nhs.status = \"Progressing\"\nreturn hs\n",
		"quote in literal":    "hs = {}\nif obj.status.phase == \"it's\" then hs.status = \"Healthy\"; return hs end\nhs.status = \"Progressing\"\nreturn hs\n",
		"control character":   "hs = {}\nif obj.status.phase == \"a\rb\" then hs.status = \"Healthy\"; return hs end\nhs.status = \"Progressing\"\nreturn hs\n",
		"no return":           "hs = {}\nhs.status = \"Progressing\"\n",
	} {
		if e, _, err := recognise(lua); !errors.Is(err, ErrNotRecognised) {
			t.Errorf("%s: recognised as %+v (err %v); it must be left to a person", name, e, err)
		}
	}
}

// FuzzRecognise: whatever the Lua, recognise does not panic, and what it
// converts compiles.
func FuzzRecognise(f *testing.F) {
	data, err := os.ReadFile("testdata/argocd-cm.yaml")
	if err != nil {
		f.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		f.Fatal(err)
	}
	for _, v := range cm.Data {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, lua string) {
		e, _, err := recognise(lua)
		if err != nil {
			return
		}
		e.APIVersion, e.Kind = "example.com/v1", "Widget"
		if _, err := celhealth.Compile([]celhealth.Expressions{e}); err != nil {
			t.Errorf("recognise(%q) = %+v, which does not compile: %v", lua, e, err)
		}
	})
}
