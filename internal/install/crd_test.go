package install

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

var applicationsGVR = kv1.GroupVersion.WithResource("applications")

// application is an Application in ns of a Git source, its spec changed by edit.
func application(ns, name string, edit func(spec map[string]any)) *unstructured.Unstructured {
	spec := map[string]any{"source": map[string]any{"repoURL": "https://git.example.com/shop.git", "path": "deploy"}}
	if edit != nil {
		edit(spec)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": kv1.GroupVersion.String(), "kind": "Application",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     spec,
	}}
}

// installedShop starts a local cluster with keyless installed for the
// namespace shop and returns it with shop's Applications.
func installedShop(t *testing.T) (*localcluster.Cluster, dynamic.ResourceInterface) {
	t.Helper()
	c := clustertest.Start(t, localcluster.Options{})
	if err := Apply(t.Context(), c.Config, Options{ControllerNamespace: "cd", Namespaces: []string{"shop"}}); err != nil {
		t.Fatal(err)
	}
	return c, dynamic.NewForConfigOrDie(c.Config).Resource(applicationsGVR).Namespace("shop")
}

func set(path string, value any) func(map[string]any) {
	return func(spec map[string]any) {
		keys := strings.Split(path, ".")
		if err := unstructured.SetNestedField(spec, value, keys...); err != nil {
			panic(err)
		}
	}
}

// TestCRDRefusesWhatTheControllerRefuses: the CRD's CEL rules refuse at
// admission an interval below kv1.MinInterval (or not a duration) and
// another cluster, each with a message that names the field and says what
// to do; what the controller takes is admitted. (Another
// destination.namespace is the controller's to refuse: a CRD's rules cannot
// read metadata.namespace.)
func TestCRDRefusesWhatTheControllerRefuses(t *testing.T) {
	ctx := t.Context()
	_, apps := installedShop(t)
	belowMin := (kv1.MinInterval - time.Millisecond).String()
	for name, tc := range map[string]struct {
		edit func(map[string]any)
		want string // "" admitted, else a part of the refusal
	}{
		"interval 1s":                  {set("interval", "1s"), "spec.interval must be at least 5s, not 1s"},
		"interval 0s":                  {set("interval", "0s"), "spec.interval must be at least 5s, not 0s"},
		"interval just below":          {set("interval", belowMin), "spec.interval must be at least 5s, not " + belowMin},
		"interval in ms below":         {set("interval", "4999ms"), "spec.interval must be at least 5s"},
		"interval not a duration":      {set("interval", "5 minutes"), "spec.interval 5 minutes is not a duration: write it as 30s, 5m or 1h30m"},
		"interval negative":            {set("interval", "-10s"), "is not a duration"},
		"another cluster":              {set("destination.server", "https://prod.example.com:6443"), "spec.destination.server https://prod.example.com:6443 is not this cluster"},
		"interval at the minimum":      {set("interval", kv1.MinInterval.String()), ""},
		"interval as 5000ms":           {set("interval", "5000ms"), ""},
		"interval 1h30m":               {set("interval", "1h30m"), ""},
		"interval 2.5m":                {set("interval", "2.5m"), ""},
		"the in-cluster server":        {set("destination.server", kv1.InClusterServer), ""},
		"the in-cluster server, slash": {set("destination.server", kv1.InClusterServer+"/"), ""},
		"the own namespace":            {set("destination.namespace", "shop"), ""},
		"both, matching":               {set("destination", map[string]any{"server": kv1.InClusterServer, "namespace": "shop"}), ""},
		"an empty destination":         {set("destination", map[string]any{}), ""},
		"a chart source": {func(spec map[string]any) {
			spec["source"] = map[string]any{"repoURL": "oci://registry.example.com/charts", "chart": "web", "targetRevision": "1.2.x"}
			spec["interval"] = "10m"
		}, ""},
		"spec.sources": {func(spec map[string]any) {
			delete(spec, "source")
			spec["sources"] = []any{
				map[string]any{"repoURL": "https://charts.example.com", "chart": "web", "helm": map[string]any{"valueFiles": []any{"$values/web.yaml"}}},
				map[string]any{"repoURL": "https://git.example.com/values.git", "ref": "values"},
			}
			spec["destination"] = map[string]any{"namespace": "shop"}
		}, ""},
	} {
		appName := strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(name, " ", "-"), ",", ""), ".", "-")
		_, err := apps.Create(ctx, application("shop", appName, tc.edit), metav1.CreateOptions{})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: admitted, want a refusal with %q", name, tc.want)
		case tc.want != "" && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: refused with %v, want Invalid with %q", name, err, tc.want)
		}
	}
}

// TestCRDRulesKeepAdmittedApplicationsWritable: an Application admitted
// before the rules (interval 1s, another cluster) still takes
// the controller's writes once the CRD has them — its status (where the
// controller reports InvalidSpec) and its finalizers — while a new bad value
// is refused.
func TestCRDRulesKeepAdmittedApplicationsWritable(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	m, err := Render(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	crd := m.CRDs[0]
	dyn := dynamic.NewForConfigOrDie(c.Config)
	crds := dyn.Resource(crdGVR)
	// The CRD without its rules, as an older release had it.
	old := crd.DeepCopy()
	stripValidations(old.Object)
	if _, err := crds.Apply(ctx, old.GetName(), old, metav1.ApplyOptions{FieldManager: installManager, Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := waitServed(ctx, dyn, Options{ControllerNamespace: "default", Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	apps := dyn.Resource(applicationsGVR).Namespace("default")
	bad := func(spec map[string]any) {
		spec["interval"] = "1s"
		spec["destination"] = map[string]any{"server": "https://prod.example.com"}
	}
	if _, err := apps.Create(ctx, application("default", "legacy", bad), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := crds.Apply(ctx, crd.GetName(), crd, metav1.ApplyOptions{FieldManager: installManager, Force: true}); err != nil {
		t.Fatal(err)
	}
	// The API server takes the new rules asynchronously.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := apps.Create(ctx, application("default", "new", bad), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsInvalid(err), nil
	})
	if err != nil {
		t.Fatalf("the rules are not enforced: %v", err)
	}

	legacy, err := apps.Get(ctx, "legacy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setReadyCondition(legacy, metav1.ConditionFalse, kv1.ReasonInvalidSpec, "spec.destination.server \"https://prod.example.com\" is not this cluster")
	if legacy, err = apps.UpdateStatus(ctx, legacy, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("status of an Application admitted before the rules: %v", err)
	}
	legacy.SetFinalizers([]string{"keyless.dev/finalizer"})
	if legacy, err = apps.Update(ctx, legacy, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finalizer of an Application admitted before the rules: %v", err)
	}
	for field, value := range map[string]string{"interval": "2s", "destination.server": "https://staging.example.com"} {
		changed := legacy.DeepCopy()
		if err := unstructured.SetNestedField(changed.Object, value, append([]string{"spec"}, strings.Split(field, ".")...)...); err != nil {
			t.Fatal(err)
		}
		if _, err := apps.Update(ctx, changed, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsInvalid(err) {
			t.Errorf("spec.%s changed to another bad value %q: %v, want Invalid", field, value, err)
		}
	}
}

// stripValidations deletes every x-kubernetes-validations below obj.
func stripValidations(obj map[string]any) {
	delete(obj, "x-kubernetes-validations")
	for _, v := range obj {
		switch v := v.(type) {
		case map[string]any:
			stripValidations(v)
		case []any:
			for _, e := range v {
				if m, ok := e.(map[string]any); ok {
					stripValidations(m)
				}
			}
		}
	}
}

func setReadyCondition(app *unstructured.Unstructured, status metav1.ConditionStatus, reason, message string) {
	cond := map[string]any{
		"type": kv1.ReadyCondition, "status": string(status), "reason": reason, "message": message,
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339), "observedGeneration": app.GetGeneration(),
	}
	_ = unstructured.SetNestedSlice(app.Object, []any{cond}, "status", "conditions")
}

// TestPrinterColumnsShowAFailure: `kubectl get applications` shows READY
// False and the Ready condition's message of an Application that failed
// before any sync (no sync or health status yet), and -o wide its reason and
// revision; the API server serves the same columns as a Table.
func TestPrinterColumnsShowAFailure(t *testing.T) {
	ctx := t.Context()
	c, apps := installedShop(t)
	msg := "rendering deploy at 0123456: deploy/web.yaml:3: mapping values are not allowed in this context (fix the file and push)"
	for name, status := range map[string]func(*unstructured.Unstructured){
		"broken": func(u *unstructured.Unstructured) {
			setReadyCondition(u, metav1.ConditionFalse, kv1.ReasonRenderFailed, msg)
		},
		"running": func(u *unstructured.Unstructured) {
			setReadyCondition(u, metav1.ConditionTrue, kv1.ReasonSucceeded, "synced 0123456")
			_ = unstructured.SetNestedField(u.Object, kv1.SyncStatusSynced, "status", "sync", "status")
			_ = unstructured.SetNestedField(u.Object, kv1.HealthHealthy, "status", "health", "status")
			_ = unstructured.SetNestedField(u.Object, "1.2.3@sha256:"+strings.Repeat("ab", 32), "status", "lastAppliedRevision")
		},
	} {
		u, err := apps.Create(ctx, application("shop", name, nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		status(u)
		if _, err := apps.UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	raw, err := kubernetes.NewForConfigOrDie(c.Config).Discovery().RESTClient().Get().
		AbsPath("/apis", kv1.GroupVersion.Group, kv1.GroupVersion.Version, "namespaces", "shop", "applications").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	var columns, wide []string
	for _, col := range table.ColumnDefinitions {
		if col.Priority == 0 {
			columns = append(columns, col.Name)
		} else {
			wide = append(wide, col.Name)
		}
	}
	if got, want := strings.Join(columns, " "), "Name Ready Sync Health Age Status"; got != want {
		t.Errorf("columns %q, want %q", got, want)
	}
	if got, want := strings.Join(wide, " "), "Reason Revision"; got != want {
		t.Errorf("wide columns %q, want %q", got, want)
	}
	rows := map[string]string{}
	for _, row := range table.Rows {
		cells := make([]string, 0, len(row.Cells))
		for i, cell := range row.Cells {
			switch {
			case table.ColumnDefinitions[i].Name == "Age":
			case cell == nil: // no value at the column's path
				cells = append(cells, "")
			default:
				cells = append(cells, fmt.Sprint(cell))
			}
		}
		rows[fmt.Sprint(row.Cells[0])] = strings.Join(cells, "|")
	}
	for name, want := range map[string]string{
		"broken":  "broken|False|||RenderFailed||" + msg,
		"running": "running|True|Synced|Healthy|ReconciliationSucceeded|1.2.3@sha256:" + strings.Repeat("ab", 32) + "|synced 0123456",
	} {
		if rows[name] != want {
			t.Errorf("row %s:\n got %s\nwant %s", name, rows[name], want)
		}
	}

	out, err := exec.CommandContext(ctx, filepath.Join(clustertest.Assets(), "kubectl"), "--kubeconfig", c.KubeconfigPath,
		"get", "applications", "-n", "shop", "broken").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME READY SYNC HEALTH AGE STATUS" ||
		!strings.HasPrefix(lines[1], "broken") || !strings.Contains(lines[1], " False ") || !strings.HasSuffix(lines[1], msg) {
		t.Errorf("kubectl get applications:\n%s", out)
	}
}
