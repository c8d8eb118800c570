package controller_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestDeployerRoleDerivedFromManifests: with the namespace installed by
// `keyless install namespace --manifests` (a deployer Role listing only the
// manifests' kinds), the Application syncs, is watched and prunes; a commit
// adding a kind the Role lacks fails naming it, and what runs is kept.
func TestDeployerRoleDerivedFromManifests(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	files := manifests("registry.example.com/web:1.0", "hello")
	role := e.installDerived(files)
	var granted []string
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			granted = append(granted, strings.Join(r.APIGroups, ",")+"/"+res)
		}
	}
	if strings.Join(granted, " ") != "/configmaps /services apps/deployments" {
		t.Fatalf("deployer Role grants %v, want exactly the manifests' kinds", granted)
	}

	first := e.push(files, nil, "initial deploy")
	e.startController(time.Hour)
	e.createApp("web", "deploy", time.Hour)
	e.waitApp("web", "Ready with the derived Role", 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == first
	})
	t.Log("drift is watched with the derived watch rights")
	e.editUntilReverted("web")

	t.Log("prune works with the derived Role")
	e.push(nil, []string{"deploy/svc.yaml"}, "remove the service")
	e.gitlabHook(hookSecret)
	waitFor(t, 20*time.Second, "Service pruned", func() (bool, string) {
		_, err := e.cs.CoreV1().Services(appNS).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), errString(err)
	})

	t.Log("a kind the Role lacks fails, naming it")
	e.push(map[string]string{"deploy/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: extra\n"}, nil, "a new kind")
	e.gitlabHook(hookSecret)
	e.waitApp("web", "forbidden kind reported", 30*time.Second, func(a *kv1.Application) bool {
		msg := condition(a, kv1.ReadyCondition) + condition(a, kv1.StalledCondition)
		return strings.Contains(msg, "serviceaccounts") || strings.Contains(msg, "ServiceAccount/extra")
	})
	if img := e.image(); img != "registry.example.com/web:1.0" {
		t.Fatalf("image %s", img)
	}
}

// TestPusherCannotBindKeylessRightsToThemselves: the namespace's manifests
// hold a Role and a RoleBinding (so `keyless install namespace --manifests`
// lets the deployer write those kinds, by name). The pair applies on the
// first sync (the dry-run tolerates the RoleBinding's Role created by the
// same set). Then a pusher commits a RoleBinding of Role keyless-deployer to
// User mallory, and another of the team's Role to mallory: the commit is
// refused whole, naming both, what runs is kept, and mallory holds no right
// in the namespace.
func TestPusherCannotBindKeylessRightsToThemselves(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	rbacFiles := map[string]string{
		"deploy/cm.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {greeting: hello}\n",
		"deploy/sa.yaml":   "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app}\nautomountServiceAccountToken: false\n",
		"deploy/role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: app-reader}\nrules:\n- {apiGroups: [''], resources: [configmaps], verbs: [get]}\n",
		"deploy/rb.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: app-reader}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: app-reader}\nsubjects:\n- {kind: ServiceAccount, name: app}\n",
	}
	role := e.installDerived(rbacFiles)
	for _, r := range role.Rules {
		if slices.Contains(r.APIGroups, "rbac.authorization.k8s.io") && (len(r.ResourceNames) == 0 ||
			slices.Contains(r.Verbs, "bind") || slices.Contains(r.Verbs, "escalate")) {
			t.Errorf("the derived Role grants RBAC kinds beyond the manifests' names: %+v", r)
		}
	}

	first := e.push(rbacFiles, nil, "the app with its own reader Role")
	e.startController(time.Hour)
	e.createApp("web", "deploy", time.Hour)
	e.waitApp("web", "Ready: a Role and its RoleBinding in one set", 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == first
	})

	t.Log("a pusher binds the deployer's Role, and the team's, to themselves")
	e.push(map[string]string{
		"deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {greeting: pwned}\n",
		"deploy/steal.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: keyless-deployer-mallory}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: keyless-deployer}\nsubjects:\n- {kind: User, name: mallory}\n",
		"deploy/rb.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: app-reader}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: app-reader}\nsubjects:\n- {kind: ServiceAccount, name: app}\n- {kind: User, name: mallory}\n",
	}, nil, "innocent refactoring")
	e.gitlabHook(hookSecret)
	app := e.waitApp("web", "the commit refused naming both bindings", 30*time.Second, func(a *kv1.Application) bool {
		msg := condition(a, kv1.StalledCondition)
		return strings.Contains(msg, "RoleBinding/keyless-deployer-mallory") && strings.Contains(msg, `User "mallory"`)
	})
	if app.Status.LastAppliedRevision != first {
		t.Errorf("lastAppliedRevision moved to %s", app.Status.LastAppliedRevision)
	}
	cm, err := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil || cm.Data["greeting"] != "hello" {
		t.Errorf("the refused commit's ConfigMap was applied: %v %v", cm.Data, err)
	}
	if _, err := e.cs.RbacV1().RoleBindings(appNS).Get(ctx, "keyless-deployer-mallory", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the stealing RoleBinding exists: %v", err)
	}
	for _, verb := range []string{"get", "list", "create"} {
		for _, res := range []string{"secrets", "configmaps", "rolebindings"} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: "mallory",
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: appNS, Verb: verb, Resource: res}}}
			got, err := e.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed {
				t.Errorf("mallory may %s %s in %s", verb, res, appNS)
			}
		}
	}
}

// writeTree writes files (slash paths) into a new folder and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// installDerived installs appNS with `keyless install namespace
// --manifests deploy` over files and returns the derived deployer Role.
func (e *env) installDerived(files map[string]string) *rbacv1.Role {
	e.t.Helper()
	dir := writeTree(e.t, files)
	code, out, errOut := e.keyless("", "install", "namespace", appNS, "--manifests", filepath.Join(dir, "deploy"), "--root", dir)
	if code != 0 {
		e.t.Fatalf("install namespace: exit %d\n%s%s", code, out, errOut)
	}
	role, err := e.cs.RbacV1().Roles(appNS).Get(e.t.Context(), "keyless-deployer", metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return role
}
