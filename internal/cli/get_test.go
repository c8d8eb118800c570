package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestGetPrintsApps: the table (READY and STATUS saying a failure), with
// NAMESPACE for -A and the wide columns (SOURCE, TARGET, LAST SYNC, HELD:
// a closed sync window) and the whole STATUS for -o wide.
func TestGetPrintsApps(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	web := kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a", CreationTimestamp: metav1.NewTime(now.Add(-50 * time.Hour))},
		Spec:       kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: "https://git.example/apps.git", TargetRevision: "main", Path: "deploy/web"}},
		Status: kv1.ApplicationStatus{
			Sync: kv1.SyncStatus{Status: "Synced"}, Health: kv1.HealthStatus{Status: "Degraded", Message: "Deployment/web:\nprogress deadline exceeded"},
			LastAppliedRevision: "0123456789abcdef0123456789abcdef01234567",
			History:             []kv1.SyncRecord{{Author: "alice", FinishedAt: metav1.NewTime(now.Add(-5 * time.Minute))}},
		},
	}
	chart := kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "team-b", CreationTimestamp: metav1.NewTime(now.Add(-90 * time.Second))},
		Spec: kv1.ApplicationSpec{Sources: []kv1.ApplicationSource{
			{RepoURL: "https://user:secret@git.example/values.git", Ref: "values"},
			{RepoURL: "oci://registry.example/charts", Chart: "postgres", TargetRevision: "1.2.3"},
		}},
		Status: kv1.ApplicationStatus{Conditions: []metav1.Condition{{Type: kv1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "RenderFailed", Message: "values.yaml:3: bad"}},
			SyncWindow: &kv1.SyncWindowStatus{Window: "deny 0 22 * * 5 for 60h (UTC)", Until: metav1.NewTime(now.Add(3 * time.Hour))}},
	}
	for _, tc := range []struct {
		name    string
		opts    tableOptions
		want    []string
		notWant []string
	}{
		{name: "text", want: []string{
			"NAME   READY     SYNC      HEALTH     REVISION   AUTHOR   AGE    STATUS\n",
			"web    Unknown   Synced    Degraded   0123456    alice    2d2h   Deployment/web: progress deadline exceeded\n",
			// A failure before any sync: READY False, STATUS the reason and message.
			"db     False     Unknown   Unknown                        90s    RenderFailed: values.yaml:3: bad\n",
		}, notWant: []string{"NAMESPACE", "SOURCE", "deploy/web"}},
		{name: "all namespaces", opts: tableOptions{namespaces: true}, want: []string{"NAMESPACE   NAME", "team-a      web", "team-b      db"}},
		{name: "no headers", opts: tableOptions{noHeaders: true}, want: []string{"web   Unknown   Synced    Degraded   0123456   alice   2d2h   Deployment/web: progress deadline exceeded\n"}, notWant: []string{"NAME"}},
		{name: "wide", opts: tableOptions{wide: true}, want: []string{
			"AGE    SOURCE                                        TARGET   LAST SYNC   HELD                                                                   STATUS\n",
			"2d2h   https://git.example/apps.git deploy/web       main     5m          -                                                                      Deployment/web: progress deadline exceeded\n",
			"90s    oci://registry.example/charts postgres (+1)   1.2.3                window closed until 2025-06-01 15:00Z: deny 0 22 * * 5 for 60h (UTC)   RenderFailed: values.yaml:3: bad\n",
		}, notWant: []string{"secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if err := printApps(&out, []kv1.Application{web, chart}, tc.opts, now); err != nil {
				t.Fatal(err)
			}
			wantOutput(t, out.String(), tc.want, tc.notWant)
		})
	}
	t.Run("long status", func(t *testing.T) {
		long := chart.DeepCopy()
		long.Status.Conditions[0].Message = strings.Repeat("x", 200)
		var out, wide strings.Builder
		if err := printApps(&out, []kv1.Application{*long}, tableOptions{}, now); err != nil {
			t.Fatal(err)
		}
		if err := printApps(&wide, []kv1.Application{*long}, tableOptions{wide: true}, now); err != nil {
			t.Fatal(err)
		}
		wantOutput(t, out.String(), []string{"RenderFailed: " + strings.Repeat("x", statusColumnWidth-len("RenderFailed: ")-1) + "…\n"}, nil)
		wantOutput(t, wide.String(), []string{"RenderFailed: " + strings.Repeat("x", 200) + "\n"}, nil)
	})
}

// TestGetApplications: kubectl's names for the resource all list
// Applications, NAME shows one, -o wide is accepted; wrong uses exit 1 and
// say why.
func TestGetApplications(t *testing.T) {
	ctx := t.Context()
	c, _ := clusterWithApps(t, "web", "api")
	kc := "--kubeconfig=" + c.KubeconfigPath
	for _, tc := range []struct {
		args    []string
		code    int
		want    []string // in stdout, or in stderr when code != 0
		notWant []string
	}{
		{args: []string{"applications"}, want: []string{"NAME ", "\nweb ", "\napi "}},
		{args: []string{"application"}, want: []string{"\nweb ", "\napi "}},
		{args: []string{"apps"}, want: []string{"\nweb ", "\napi "}},
		{args: []string{"app"}, want: []string{"\nweb ", "\napi "}},
		{args: []string{"kapps"}, want: []string{"\nweb ", "\napi "}},
		{args: []string{"kapp"}, want: []string{"\nweb ", "\napi "}},
		{args: []string{"apps", "web"}, want: []string{"\nweb "}, notWant: []string{"\napi "}},
		{args: []string{"apps", "web", "-o", "wide"}, want: []string{"SOURCE", "TARGET", "LAST SYNC", "https://git.example/apps.git deploy/web", "main"}},
		{args: []string{"apps", "web", "-o", "json"}, want: []string{`"name": "web"`}, notWant: []string{`"name": "api"`, `"items"`}},
		{args: []string{"apps", "nope"}, code: 1, want: []string{"team-a/nope", "not found"}},
		{args: []string{"apps", "web", "-A"}, code: 1, want: []string{"pass -n instead of -A"}},
		{args: []string{"apps", "web", "api"}, code: 1, want: []string{"at most 1 arg"}},
		{args: []string{"apps", "-o", "yaml"}, want: []string{"apiVersion: v1\nitems:\n- apiVersion: keyless.dev/v1alpha1\n  kind: Application\n", "name: web", "name: api", "kind: List\n"}, notWant: []string{"managedFields"}},
		{args: []string{"apps", "-o", "json"}, want: []string{`"kind": "List"`, `"name": "web"`, `"name": "api"`}},
		{args: []string{"apps", "web", "-o", "yaml"}, want: []string{"apiVersion: keyless.dev/v1alpha1\nkind: Application\n", "  name: web\n"}, notWant: []string{"kind: List", "name: api"}},
		{args: []string{"apps", "-o", "name"}, want: []string{"application.keyless.dev/web\n", "application.keyless.dev/api\n"}},
		{args: []string{"apps", "-o", "jsonpath={.items[*].spec.source.path}"}, want: []string{"deploy/"}},
		{args: []string{"apps", "web", "-o", "custom-columns=NAME:.metadata.name,PATH:.spec.source.path"}, want: []string{"NAME   PATH\nweb    deploy/web\n"}},
		{args: []string{"apps", "-o", "bogus"}, code: 1, want: []string{`--output "bogus": want one of wide, json, yaml`, "jsonpath", "custom-columns"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(ctx, t, append(append([]string{"get"}, tc.args...), "-n", "team-a", kc)...)
			if tc.code != 0 {
				out = errOut
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			wantOutput(t, out, tc.want, tc.notWant)
		})
	}
}

// TestGetOutputFormats: every -o of get applications, for several
// Applications (a List, as kubectl) and for one named (the object itself).
func TestGetOutputFormats(t *testing.T) {
	apps := []kv1.Application{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
			Spec:   kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: "https://git.example/apps.git", Path: "deploy/web"}},
			Status: kv1.ApplicationStatus{Sync: kv1.SyncStatus{Status: "Synced"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "team-a"},
			Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: "https://git.example/apps.git", Path: "deploy/api"}}},
	}
	for _, tc := range []struct {
		output  string
		one     bool // print apps[0] as the named object
		want    string
		notWant []string
		err     string
	}{
		{output: "", want: "NAME   READY     SYNC      HEALTH    REVISION   AUTHOR   AGE   STATUS\nweb    Unknown   Synced    Unknown"},
		{output: "wide", want: "SOURCE                                    TARGET"},
		{output: "json", want: "{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n        {\n            \"apiVersion\": \"keyless.dev/v1alpha1\",\n            \"kind\": \"Application\",", notWant: []string{"managedFields"}},
		{output: "json", one: true, want: "{\n    \"apiVersion\": \"keyless.dev/v1alpha1\",\n    \"kind\": \"Application\",", notWant: []string{"List", `"api"`}},
		{output: "yaml", want: "apiVersion: v1\nitems:\n- apiVersion: keyless.dev/v1alpha1\n  kind: Application\n", notWant: []string{"managedFields"}},
		{output: "yaml", one: true, want: "apiVersion: keyless.dev/v1alpha1\nkind: Application\nmetadata:\n  name: web\n"},
		{output: "kyaml", want: "kind: \"List\""},
		{output: "name", want: "application.keyless.dev/web\napplication.keyless.dev/api\n"},
		{output: "name", one: true, want: "application.keyless.dev/web\n", notWant: []string{"api"}},
		{output: "jsonpath={range .items[*]}{.metadata.name}={.spec.source.path};{end}", want: "web=deploy/web;api=deploy/api;"},
		{output: "jsonpath={.status.sync.status}", one: true, want: "Synced"},
		{output: "jsonpath-as-json={.items[*].metadata.name}", want: "[\n    \"web\",\n    \"api\"\n]"},
		{output: "go-template={{range .items}}{{.metadata.name}} {{end}}", want: "web api "},
		{output: "custom-columns=NAME:.metadata.name,PATH:.spec.source.path", want: "NAME   PATH\nweb    deploy/web\napi    deploy/api\n"},
		{output: "custom-columns=NAME:.metadata.name", one: true, want: "NAME\nweb\n", notWant: []string{"api"}},
		{output: "custom-columns=", err: "no custom columns given"},
		{output: "jsonpath={.items[", err: "--output jsonpath={.items["},
		{output: "text", err: `--output "text": want one of wide, json, yaml, kyaml, name, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file, custom-columns, custom-columns-file`},
	} {
		t.Run(fmt.Sprintf("%s one=%v", tc.output, tc.one), func(t *testing.T) {
			f := &getAppsFlags{print: genericclioptions.NewPrintFlags("")}
			f.print.AddFlags(&cobra.Command{})
			*f.print.OutputFormat = tc.output
			p, err := f.toPrinter()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			switch {
			case p.table != nil:
				err = printApps(&out, apps, *p.table, time.Now())
			case tc.one:
				err = p.printObject(&out, &apps[0])
			default:
				err = p.printList(&out, apps)
			}
			if err != nil {
				t.Fatal(err)
			}
			wantOutput(t, out.String(), []string{tc.want}, tc.notWant)
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGetWatch: get apps -w prints the table, then a row per change of an
// Application; with -o json each changed Application; interrupting it ends
// it with exit 0.
func TestGetWatch(t *testing.T) {
	ctx := t.Context()
	c, cl := clusterWithApps(t, "web")
	app := &kv1.Application{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "web"}, app); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args          []string
		first, change string // in the output before and after the change
		status        string
	}{
		{args: []string{"-w"}, first: "NAME   READY     SYNC      HEALTH    REVISION   AUTHOR   AGE   STATUS\nweb    Unknown   Unknown   Unknown", change: "\nweb   Unknown   OutOfSync   Unknown", status: "OutOfSync"},
		{args: []string{"web", "--watch", "-o", "json"}, first: `"kind": "Application"`, change: `"status": "Synced"`, status: "Synced"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var out, errOut syncBuffer
			done := make(chan int)
			go func() {
				done <- Run(wctx, append([]string{"get", "apps", "-n", "team-a", "--kubeconfig", c.KubeconfigPath}, tc.args...), IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			}()
			waitFor := func(s string) {
				t.Helper()
				deadline := time.Now().Add(30 * time.Second)
				for !strings.Contains(out.String(), s) {
					if time.Now().After(deadline) {
						t.Fatalf("no %q in the output within 30s:\n%s\nstderr: %s", s, out.String(), errOut.String())
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			waitFor(tc.first)
			if strings.Contains(out.String(), tc.change) {
				t.Fatalf("%q before the change:\n%s", tc.change, out.String())
			}
			patch := client.MergeFrom(app.DeepCopy())
			app.Status.Sync.Status = tc.status
			if err := cl.Status().Patch(ctx, app, patch); err != nil {
				t.Fatal(err)
			}
			waitFor(tc.change)
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("exit %d after the interrupt: %s", code, errOut.String())
			}
		})
	}
}

// clusterWithApps starts a local control plane with keyless installed for
// team-a and an Application per name there (a Git folder deploy/NAME, no
// controller running), and returns it with a client.
func clusterWithApps(t *testing.T, names ...string) (*localcluster.Cluster, client.WithWatch) {
	t.Helper()
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	if err := install.Apply(ctx, c.Config, install.Options{Namespaces: []string{"team-a"}}); err != nil {
		t.Fatal(err)
	}
	cl, err := kubeFlagsFor(c.KubeconfigPath).appClient()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"}, Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{
			RepoURL: "https://git.example/apps.git", TargetRevision: "main", Path: "deploy/" + name,
		}}}
		if err := cl.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	return c, cl
}
