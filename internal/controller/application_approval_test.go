package controller_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

const (
	approverU = "bob@example.com"
	viewerU   = "viewer@example.com"
	// authorU is the API server's name for dev, the author of every
	// commit e.push makes.
	authorU = "dana@example.com"
	crdName = "widgets.example.com"
)

// platformChart is a chart of the kind platform teams install: a CRD, a
// ClusterRole and a ClusterRoleBinding to its ServiceAccount (out of the
// namespace), a ServiceAccount, a Deployment and a custom resource of the
// CRD (in it).
func platformChart(image, verbs string, withBinding bool) map[string]string {
	files := map[string]string{
		"platform/Chart.yaml":  "apiVersion: v2\nname: platform\nversion: 0.1.0\n",
		"platform/values.yaml": "image: " + image + "\nverbs: [" + verbs + "]\n",
		"platform/templates/crd.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`,
		"platform/templates/clusterrole.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ .Release.Name }}-widget-reader
rules:
- apiGroups: [example.com]
  resources: [widgets]
  verbs: {{ .Values.verbs | toJson }}
`,
		"platform/templates/serviceaccount.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Release.Name }}\n",
		"platform/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: platform}
  template:
    metadata:
      labels: {app: platform}
    spec:
      serviceAccountName: {{ .Release.Name }}
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: operator
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        image: {{ .Values.image }}
`,
		"platform/templates/widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: main\nspec:\n  size: 3\n",
	}
	if withBinding {
		files["platform/templates/clusterrolebinding.yaml"] = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ .Release.Name }}-widget-reader
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {{ .Release.Name }}-widget-reader}
subjects:
- {kind: ServiceAccount, name: {{ .Release.Name }}, namespace: {{ .Release.Namespace }}}
`
	}
	return files
}

// TestOutOfNamespaceApproval: an Application whose chart holds a CRD, a
// ClusterRole and a ClusterRoleBinding waits for a person's approval;
// keyless approve as someone other than the author applies them as that
// person, then the controller syncs the namespaced part as the deployer.
// Later commits that change only namespaced objects sync at once; one that
// changes the ClusterRole or drops the binding waits again, the old
// version running; the API server's audit log shows who wrote what.
func TestOutOfNamespaceApproval(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.grantApprovalTestRights()
	e.startController(5 * time.Second)

	c1 := e.push(platformChart("nginx:1.0", "get, list", true), nil, "platform v1")
	time.Sleep(1100 * time.Millisecond)
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "platform", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Path: "platform",
				SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}, OutOfNamespace: kv1.OutOfNamespaceApprove},
			Interval:   &metav1.Duration{Duration: 5 * time.Second},
		},
	}
	if err := e.admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}

	got := e.waitPending("platform", c1)
	wantObjects := []string{"ClusterRole/platform-widget-reader", "ClusterRoleBinding/platform-widget-reader", "CustomResourceDefinition/" + crdName}
	if p := got.Status.Approval.Pending; !slices.Equal(sorted(p.Objects), wantObjects) || !slices.Equal(sorted(p.Added), wantObjects) || p.Author != dev.Name+" <"+dev.Email+">" {
		t.Fatalf("pending approval = %+v, want objects and added %v by %s", p, wantObjects, dev.Email)
	}
	if r := readyReason(got); r != kv1.ReasonAwaitingApproval {
		t.Fatalf("Ready reason = %s, want %s", r, kv1.ReasonAwaitingApproval)
	}
	e.assertAbsent(&appsv1.Deployment{}, appNS, "platform", "nothing of the revision is applied before the approval")
	e.assertAbsent(&apiextensionsv1.CustomResourceDefinition{}, "", crdName, "the CRD waits for the approval")

	t.Run("keyless approvals lists what waits", func(t *testing.T) {
		code, out, errOut := e.keyless("", "approvals", "-A")
		if code != 0 || !strings.Contains(out, "platform") || !strings.Contains(out, dev.Email) || !strings.Contains(out, "other than the author") {
			t.Fatalf("approvals: %d\n%s%s", code, out, errOut)
		}
	})
	t.Run("a viewer without rights gets the API server's 403 and nothing is applied", func(t *testing.T) {
		code, out, errOut := e.keyless("", "approve", "platform", "-n", appNS, "--yes", "--as", viewerU)
		if code == 0 || !strings.Contains(errOut, "forbidden") {
			t.Fatalf("approve as a viewer: %d\n%s%s", code, out, errOut)
		}
		e.assertAbsent(&apiextensionsv1.CustomResourceDefinition{}, "", crdName, "a refused approval applies nothing")
	})
	t.Run("the commit's author may not approve it", func(t *testing.T) {
		code, out, errOut := e.keyless("", "approve", "platform", "-n", appNS, "--yes", "--as", authorU, "--as-group", "system:masters")
		if code == 0 || !strings.Contains(errOut, "four eyes") {
			t.Fatalf("approve as the author: %d\n%s%s", code, out, errOut)
		}
		e.assertAbsent(&apiextensionsv1.CustomResourceDefinition{}, "", crdName, "a refused approval applies nothing")
	})
	t.Run("no at the prompt applies nothing", func(t *testing.T) {
		code, out, errOut := e.keyless("n\n", "approve", "platform", "-n", appNS, "--as", approverU, "--as-group", "system:masters")
		if code == 0 || !strings.Contains(out, "+ CustomResourceDefinition/"+crdName) || !strings.Contains(errOut, "not approved") {
			t.Fatalf("approve answered no: %d\n%s%s", code, out, errOut)
		}
		e.assertAbsent(&apiextensionsv1.CustomResourceDefinition{}, "", crdName, "an approval answered no applies nothing")
	})

	e.approve("platform")
	synced := e.waitApp("platform", "synced at "+c1, time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == c1 && ready(a) })
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := e.admin.Get(ctx, client.ObjectKey{Name: crdName}, crd); err != nil || !crdEstablished(crd) {
		t.Fatalf("CRD %s after the approval: established=%v, %v", crdName, crdEstablished(crd), err)
	}
	widget := &unstructured.Unstructured{}
	widget.SetGroupVersionKind(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"})
	if err := e.admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "main"}, widget); err != nil {
		t.Fatalf("the custom resource of the approved CRD was not applied: %v", err)
	}
	if h := synced.Status.History[0]; h.ApprovedBy != approverU || h.ApprovalDigest == "" || h.ApprovalDigest != synced.Status.Approval.Approved.Digest {
		t.Fatalf("history names approval %q %q, want %s and the approved digest %+v", h.ApprovedBy, h.ApprovalDigest, approverU, synced.Status.Approval)
	}
	if synced.Status.Approval.Pending != nil || synced.Status.Approval.Approved.SelfApproved {
		t.Fatalf("approval status after the approval: %+v", synced.Status.Approval)
	}
	e.assertAuditApproval(c1, approverU, synced.Status.Approval.Approved.Digest)
	if code, out, errOut := e.keyless("", "history", "platform", "-n", appNS); code != 0 || !strings.Contains(out, "APPROVED BY") || !strings.Contains(out, approverU) {
		t.Fatalf("keyless history does not name the approver: %d\n%s%s", code, out, errOut)
	}
	e.assertEvent(kv1.ReasonApproved, approverU)

	t.Run("a commit changing only namespaced objects syncs without approval", func(t *testing.T) {
		c2 := e.push(platformChart("nginx:2.0", "get, list", true), nil, "platform v2")
		a := e.waitApp("platform", "synced at "+c2, time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == c2 && ready(a) })
		if a.Status.Approval.Pending != nil || a.Status.History[0].ApprovedBy != approverU {
			t.Fatalf("after a namespaced-only commit: approval %+v, history %+v", a.Status.Approval, a.Status.History[0])
		}
	})

	t.Run("a commit changing the ClusterRole waits, the old version running", func(t *testing.T) {
		c3 := e.push(platformChart("nginx:3.0", "get, list, watch", true), nil, "platform v3: watch widgets")
		a := e.waitPending("platform", c3)
		p := a.Status.Approval.Pending
		if !slices.Equal(p.Changed, []string{"ClusterRole/platform-widget-reader"}) || len(p.Added) != 0 || len(p.Removed) != 0 || !strings.Contains(p.Diff, "+  - watch") {
			t.Fatalf("pending change = changed %v added %v removed %v diff:\n%s", p.Changed, p.Added, p.Removed, p.Diff)
		}
		time.Sleep(2 * time.Second)
		if img := e.deploymentImage("platform"); img != "nginx:2.0" {
			t.Fatalf("the held revision's image %s is running; want the last approved state (nginx:2.0)", img)
		}
		e.approve("platform")
		e.waitApp("platform", "synced at "+c3, time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == c3 && ready(a) })
		cr := &rbacv1.ClusterRole{}
		if err := e.admin.Get(ctx, client.ObjectKey{Name: "platform-widget-reader"}, cr); err != nil || !slices.Contains(cr.Rules[0].Verbs, "watch") {
			t.Fatalf("ClusterRole after the approval: %+v, %v", cr.Rules, err)
		}
		if img := e.deploymentImage("platform"); img != "nginx:3.0" {
			t.Fatalf("image after the approval = %s, want nginx:3.0", img)
		}
	})

	t.Run("an object dropped from the render is deleted only by the next approval", func(t *testing.T) {
		c4 := e.push(platformChart("nginx:3.0", "get, list, watch", false), []string{"platform/templates/clusterrolebinding.yaml"}, "platform v4: no binding")
		a := e.waitPending("platform", c4)
		if p := a.Status.Approval.Pending; !slices.Equal(p.Removed, []string{"ClusterRoleBinding/platform-widget-reader"}) {
			t.Fatalf("pending removal = %v", p.Removed)
		}
		if err := e.admin.Get(ctx, client.ObjectKey{Name: "platform-widget-reader"}, &rbacv1.ClusterRoleBinding{}); err != nil {
			t.Fatalf("the binding is gone before the approval: %v", err)
		}
		e.approve("platform")
		e.waitApp("platform", "synced at "+c4, time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == c4 && ready(a) })
		e.assertAbsent(&rbacv1.ClusterRoleBinding{}, "", "platform-widget-reader", "the approval deletes what left the render")
	})

	t.Run("the API server's audit log: the person for out-of-namespace writes, the deployer for the rest", func(t *testing.T) {
		var sawPerson, sawDeployer bool
		for _, w := range e.cluster.ObjectWrites(t) {
			actor, ref := w.Actor(), w.ObjectRef
			if kubernetesItself(actor) {
				continue // kube-controller-manager's revision annotations, say
			}
			switch {
			case ref.Resource == "customresourcedefinitions" && ref.Name == crdName,
				(ref.Resource == "clusterroles" || ref.Resource == "clusterrolebindings") && ref.Name == "platform-widget-reader":
				sawPerson = true
				if actor != approverU {
					t.Errorf("%s %s/%s was written by %s, want the approver %s", w.Verb, ref.Resource, ref.Name, actor, approverU)
				}
			case ref.Namespace == appNS && (ref.Resource == "deployments" && ref.Name == "platform" || ref.Resource == "widgets" && ref.Name == "main"):
				sawDeployer = true
				if actor != deployerU {
					t.Errorf("%s %s/%s was written by %s, want %s", w.Verb, ref.Resource, ref.Name, actor, deployerU)
				}
			}
			if ref.Namespace == "" && (actor == deployerU || actor == controllerU) {
				t.Errorf("keyless wrote the cluster-scoped %s/%s (%s as %s)", ref.Resource, ref.Name, w.Verb, actor)
			}
		}
		if !sawPerson || !sawDeployer {
			t.Fatalf("audit log: out-of-namespace writes seen %v, deployer's writes seen %v", sawPerson, sawDeployer)
		}
	})
}

// grantApprovalTestRights is the cluster admin's part of the test: the
// deployer may manage the chart's namespaced kinds (ServiceAccounts and
// the Widgets of the approved CRD), and the viewer may read Applications
// and the pending objects but write nothing.
func (e *env) grantApprovalTestRights() {
	e.t.Helper()
	ctx := e.t.Context()
	objs := []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "platform-kinds", Namespace: appNS}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}},
			{APIGroups: []string{"example.com"}, Resources: []string{"widgets"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "platform-kinds", Namespace: appNS},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "platform-kinds"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: kv1.DefaultServiceAccountName, Namespace: appNS}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "approval-viewer"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{kv1.GroupVersion.Group}, Resources: []string{"applications"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "approval-viewer"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "approval-viewer"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: viewerU}}},
	}
	for _, o := range objs {
		if err := e.admin.Create(ctx, o); err != nil {
			e.t.Fatal(err)
		}
	}
}

// waitPending waits until name holds rev for approval.
func (e *env) waitPending(name, rev string) *kv1.Application {
	e.t.Helper()
	return e.waitApp(name, "awaiting approval of "+rev, time.Minute, func(a *kv1.Application) bool {
		return a.Status.Approval != nil && a.Status.Approval.Pending != nil && a.Status.Approval.Pending.Revision == rev &&
			readyReason(a) == kv1.ReasonAwaitingApproval
	})
}

// approve runs keyless approve as approverU (a cluster admin who did not
// write the commits), answering yes at the prompt.
func (e *env) approve(name string) {
	e.t.Helper()
	code, out, errOut := e.keyless("yes\n", "approve", name, "-n", appNS, "--as", approverU, "--as-group", "system:masters", "--timeout", "90s")
	if code != 0 {
		e.t.Fatalf("keyless approve: %d\n%s%s", code, out, errOut)
	}
}

func (e *env) assertAbsent(obj client.Object, ns, name, why string) {
	e.t.Helper()
	if err := e.admin.Get(e.t.Context(), client.ObjectKey{Namespace: ns, Name: name}, obj); !apierrors.IsNotFound(err) {
		e.t.Fatalf("%T %s exists (err %v): %s", obj, name, err, why)
	}
}

func (e *env) deploymentImage(name string) string {
	e.t.Helper()
	d := &appsv1.Deployment{}
	if err := e.admin.Get(e.t.Context(), client.ObjectKey{Namespace: appNS, Name: name}, d); err != nil {
		e.t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// assertAuditApproval: keyless's JSON audit line of the sync of rev names
// the approver and the digest.
func (e *env) assertAuditApproval(rev, approver, digest string) {
	e.t.Helper()
	for _, r := range e.audit.records(e.t) {
		if r.Revision == rev && r.Result == kv1.SyncResultSucceeded {
			if r.ApprovedBy != approver || r.ApprovalDigest != digest {
				e.t.Fatalf("audit line of %s: approvedBy %q digest %q, want %s %s", rev, r.ApprovedBy, r.ApprovalDigest, approver, digest)
			}
			return
		}
	}
	e.t.Fatalf("no audit line for the sync of %s", rev)
}

// assertEvent: an Event of reason in appNS mentions text.
func (e *env) assertEvent(reason, text string) {
	e.t.Helper()
	waitForOr(e.t, 10*time.Second, "an Event "+reason, func() (bool, string) {
		for _, line := range strings.Split(e.events(appNS), "\n") {
			if strings.Contains(line, " "+reason+": ") && strings.Contains(line, text) {
				return true, ""
			}
		}
		return false, ""
	}, func() string { return e.events(appNS) })
}

// kubernetesItself reports the API server's and the control plane's own
// identities.
func kubernetesItself(actor string) bool {
	for _, p := range []string{"system:apiserver", "system:kube-", "keyless-local-kube-", "system:serviceaccount:kube-system:"} {
		if strings.HasPrefix(actor, p) {
			return true
		}
	}
	return false
}

func readyReason(a *kv1.Application) string {
	for _, c := range a.Status.Conditions {
		if c.Type == kv1.ReadyCondition {
			return c.Reason
		}
	}
	return ""
}

func crdEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

func sorted(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}
