package cli

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestGetPrintsApps: the table, with NAMESPACE for -A and the wide columns
// (SOURCE, TARGET, LAST SYNC, MESSAGE) for -o wide.
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
		Status: kv1.ApplicationStatus{Conditions: []metav1.Condition{{Type: kv1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "RenderFailed", Message: "values.yaml:3: bad"}}},
	}
	for _, tc := range []struct {
		name             string
		namespaces, wide bool
		want             []string
		notWant          []string
	}{
		{name: "text", want: []string{
			"NAME   SYNC      HEALTH     REVISION   AUTHOR   AGE\n",
			"web    Synced    Degraded   0123456    alice    2d2h\n",
			"db     Unknown   Unknown                        90s\n",
		}, notWant: []string{"NAMESPACE", "SOURCE", "deploy/web"}},
		{name: "all namespaces", namespaces: true, want: []string{"NAMESPACE   NAME", "team-a      web", "team-b      db"}},
		{name: "wide", wide: true, want: []string{
			"AGE    SOURCE                                        TARGET   LAST SYNC   MESSAGE\n",
			"2d2h   https://git.example/apps.git deploy/web       main     5m          Deployment/web: progress deadline exceeded\n",
			"90s    oci://registry.example/charts postgres (+1)   1.2.3                values.yaml:3: bad\n",
		}, notWant: []string{"secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if err := printApps(&out, []kv1.Application{web, chart}, tc.namespaces, tc.wide, now); err != nil {
				t.Fatal(err)
			}
			wantOutput(t, out.String(), tc.want, tc.notWant)
		})
	}
}

// TestGetApplications: kubectl's names for the resource all list
// Applications, NAME shows one, -o wide is accepted; wrong uses exit 1 and
// say why.
func TestGetApplications(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	if err := install.Apply(ctx, c.Config, install.Options{Namespaces: []string{"team-a"}}); err != nil {
		t.Fatal(err)
	}
	cl, err := kubeFlagsFor(c.KubeconfigPath).appClient()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "api"} {
		app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"}, Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{
			RepoURL: "https://git.example/apps.git", TargetRevision: "main", Path: "deploy/" + name,
		}}}
		if err := cl.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
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
		{args: []string{"apps", "-o", "yaml"}, code: 1, want: []string{"--output", "text, wide or json"}},
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
