package check

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/version"
)

// CRDName is the Application CustomResourceDefinition's name.
const CRDName = "applications." + "keyless.dev"

// VersionLabel is the label install sets on every object it writes: the
// version of the keyless that installed it.
const VersionLabel = "app.kubernetes.io/version"

// leaderLeasePrefix is the controller's leader Lease name (one per shard:
// keyless-controller, keyless-controller-<shard>).
const leaderLeasePrefix = "keyless-controller"

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// perNamespaceObjects are what install writes in each managed namespace:
// the controller's Role and binding, and the deployer it impersonates.
var perNamespaceObjects = []struct{ kind, name string }{
	{"Role", "keyless-controller"},
	{"RoleBinding", "keyless-controller"},
	{"ServiceAccount", kv1.DefaultServiceAccountName},
	{"Role", kv1.DefaultServiceAccountName},
	{"RoleBinding", kv1.DefaultServiceAccountName},
}

// Installed checks an install: the CRD established and of this client's
// version, the controller Deployment available and of this version, a
// leader holding the Lease, the webhook Service's endpoints, and each
// managed namespace's Roles and deployer.
func Installed(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, opts Options) *Report {
	opts.defaults()
	r := &Report{}
	checkCRD(ctx, r, dyn, opts)
	d := checkController(ctx, r, cs, opts)
	if d == nil {
		return r
	}
	checkLeader(ctx, r, cs, d, opts)
	checkWebhook(ctx, r, cs, d, opts)
	checkNamespaces(ctx, r, cs, opts)
	return r
}

// ClusterVersions returns the versions install recorded on the CRD and the
// controller Deployment ("" when absent or unreadable, with the error).
func ClusterVersions(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, controllerNamespace string) (controller, crd string, err error) {
	var errs []string
	if u, e := dyn.Resource(crdGVR).Get(ctx, CRDName, metav1.GetOptions{}); e == nil {
		crd = u.GetLabels()[VersionLabel]
	} else {
		errs = append(errs, fmt.Sprintf("CRD %s: %v", CRDName, e))
	}
	if d, e := cs.AppsV1().Deployments(controllerNamespace).Get(ctx, install.DeploymentName, metav1.GetOptions{}); e == nil {
		controller = deploymentVersion(d)
	} else {
		errs = append(errs, fmt.Sprintf("deployment %s/%s: %v", controllerNamespace, install.DeploymentName, e))
	}
	if len(errs) > 0 {
		err = fmt.Errorf("reading the cluster's keyless versions: %s", strings.Join(errs, "; "))
	}
	return controller, crd, err
}

// deploymentVersion is the controller's version: install's version label,
// else the image's tag.
func deploymentVersion(d *appsv1.Deployment) string {
	if v := d.Labels[VersionLabel]; v != "" {
		return v
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		ref, _, _ := strings.Cut(c.Image, "@")
		if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
			return ref[i+1:]
		}
	}
	return ""
}

func checkCRD(ctx context.Context, r *Report, dyn dynamic.Interface, opts Options) {
	const name = "CRD"
	u, err := dyn.Resource(crdGVR).Get(ctx, CRDName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.addf(name, StatusFailed, "%s is not installed: run `keyless install` (a cluster admin)", CRDName)
		return
	case err != nil:
		r.addf(name, StatusFailed, "cannot read %s: %v", CRDName, err)
		return
	}
	if !established(u) {
		r.addf(name, StatusFailed, "%s is not Established yet (the API server has not accepted it): `kubectl describe crd %s`", CRDName, CRDName)
		return
	}
	served := servedVersions(u)
	if !slices.Contains(served, kv1.GroupVersion.Version) {
		r.addf(name, StatusFailed, "%s serves %v, not %s: install the CRD of this keyless version", CRDName, served, kv1.GroupVersion.Version)
		return
	}
	v := u.GetLabels()[VersionLabel]
	if w := version.Skew(opts.ClientVersion, "CRD", v); w != "" {
		r.addf(name, StatusWarning, "%s %s: %s", CRDName, v, w)
		return
	}
	r.addf(name, StatusOK, "%s established, serving %s (%s)", CRDName, strings.Join(served, ", "), orUnknown(v))
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func servedVersions(u *unstructured.Unstructured) []string {
	vs, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
	var out []string
	for _, v := range vs {
		m, _ := v.(map[string]any)
		if served, _ := m["served"].(bool); served {
			name, _ := m["name"].(string)
			out = append(out, name)
		}
	}
	return out
}

// checkController reports the controller Deployment's readiness and
// version, and returns it (nil: none, nothing more to check).
func checkController(ctx context.Context, r *Report, cs kubernetes.Interface, opts Options) *appsv1.Deployment {
	const name = "controller"
	d, err := cs.AppsV1().Deployments(opts.ControllerNamespace).Get(ctx, install.DeploymentName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.addf(name, StatusFailed, "no deployment %s in %s: run `keyless install` (a cluster admin), or pass --controller-namespace", install.DeploymentName, opts.ControllerNamespace)
		return nil
	case err != nil:
		r.addf(name, StatusFailed, "cannot read deployment %s/%s: %v", opts.ControllerNamespace, install.DeploymentName, err)
		return nil
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	v := deploymentVersion(d)
	switch {
	case d.Status.AvailableReplicas == 0:
		r.addf(name, StatusFailed, "deployment %s/%s has no available replica (0/%d): `kubectl -n %s get pods,events` (an image that cannot be pulled?)",
			opts.ControllerNamespace, install.DeploymentName, want, opts.ControllerNamespace)
	case d.Status.AvailableReplicas < want:
		r.addf(name, StatusWarning, "deployment %s/%s: %d/%d replicas available", opts.ControllerNamespace, install.DeploymentName, d.Status.AvailableReplicas, want)
	default:
		msg := fmt.Sprintf("deployment %s/%s %s: %d/%d replicas available", opts.ControllerNamespace, install.DeploymentName, orUnknown(v), d.Status.AvailableReplicas, want)
		if w := version.Skew(opts.ClientVersion, "controller", v); w != "" {
			r.addf(name, StatusWarning, "%s; %s", msg, w)
		} else {
			r.addf(name, StatusOK, "%s", msg)
		}
	}
	return d
}

// checkLeader reports whether a replica holds each leader Lease and renews
// it. A controller run without --leader-elect has none, and needs none.
func checkLeader(ctx context.Context, r *Report, cs kubernetes.Interface, d *appsv1.Deployment, opts Options) {
	const name = "leader"
	if !hasArg(d, "--leader-elect") {
		r.addf(name, StatusOK, "leader election is off (one replica)")
		return
	}
	leases, err := cs.CoordinationV1().Leases(opts.ControllerNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		r.addf(name, StatusFailed, "cannot list Leases in %s: %v", opts.ControllerNamespace, err)
		return
	}
	found := false
	for _, l := range leases.Items {
		if l.Name != leaderLeasePrefix && !strings.HasPrefix(l.Name, leaderLeasePrefix+"-") {
			continue
		}
		found = true
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		duration := 15 * time.Second
		if l.Spec.LeaseDurationSeconds != nil {
			duration = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
		}
		switch {
		case holder == "":
			r.addf(name, StatusFailed, "Lease %s/%s has no holder: no replica leads (`kubectl -n %s logs deploy/%s`)", opts.ControllerNamespace, l.Name, opts.ControllerNamespace, install.DeploymentName)
		case l.Spec.RenewTime == nil || opts.Now().Sub(l.Spec.RenewTime.Time) > 2*duration:
			r.addf(name, StatusFailed, "Lease %s/%s held by %s was not renewed for over %s: the leader is gone or stuck", opts.ControllerNamespace, l.Name, holder, 2*duration)
		default:
			r.addf(name, StatusOK, "%s leads (Lease %s/%s, renewed %s ago)", holder, opts.ControllerNamespace, l.Name, opts.Now().Sub(l.Spec.RenewTime.Time).Round(time.Second))
		}
	}
	if !found {
		r.addf(name, StatusFailed, "no leader Lease %s in %s: no replica has started leading (`kubectl -n %s logs deploy/%s`)", leaderLeasePrefix, opts.ControllerNamespace, opts.ControllerNamespace, install.DeploymentName)
	}
}

// checkWebhook reports whether the controller's Service has ready
// endpoints for the webhook port (what a forge's push reaches).
func checkWebhook(ctx context.Context, r *Report, cs kubernetes.Interface, d *appsv1.Deployment, opts Options) {
	const name = "webhook"
	if !hasArgPrefix(d, "--webhook-bind-address") {
		r.addf(name, StatusOK, "the controller serves no webhook (no --webhook-bind-address): Applications poll at their interval")
		return
	}
	list, err := cs.DiscoveryV1().EndpointSlices(opts.ControllerNamespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + install.DeploymentName})
	if err != nil {
		r.addf(name, StatusFailed, "cannot list the EndpointSlices of service %s/%s: %v", opts.ControllerNamespace, install.DeploymentName, err)
		return
	}
	ready := 0
	for _, s := range list.Items {
		if !hasPort(s, "webhook") {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				ready++
			}
		}
	}
	if ready == 0 {
		r.addf(name, StatusFailed, "service %s/%s has no ready endpoint for its webhook port: forges' pushes reach nothing (Applications still poll)", opts.ControllerNamespace, install.DeploymentName)
		return
	}
	r.addf(name, StatusOK, "service %s/%s: %d ready endpoint(s) for the webhook port", opts.ControllerNamespace, install.DeploymentName, ready)
}

func hasPort(s discoveryv1.EndpointSlice, name string) bool {
	for _, p := range s.Ports {
		if p.Name != nil && *p.Name == name {
			return true
		}
	}
	return false
}

// checkNamespaces reports, for each namespace the controller manages, the
// objects install writes there.
func checkNamespaces(ctx context.Context, r *Report, cs kubernetes.Interface, opts Options) {
	nss, err := install.ManagedNamespaces(ctx, cs, opts.ControllerNamespace)
	if err != nil {
		r.addf("namespaces", StatusFailed, "%v", err)
		return
	}
	if len(nss) == 0 {
		r.addf("namespaces", StatusWarning, "the controller manages no namespace: `keyless install --namespaces TEAM`")
		return
	}
	for _, ns := range nss {
		name := "namespace " + ns
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			r.addf(name, StatusFailed, "cannot read it: %v", err)
			continue
		}
		var missing, unreadable []string
		for _, o := range perNamespaceObjects {
			err := getObject(ctx, cs, ns, o.kind, o.name)
			switch {
			case apierrors.IsNotFound(err):
				missing = append(missing, o.kind+"/"+o.name)
			case err != nil:
				unreadable = append(unreadable, fmt.Sprintf("%s/%s (%v)", o.kind, o.name, err))
			}
		}
		switch {
		case len(missing) > 0:
			r.addf(name, StatusFailed, "missing %s: run `keyless install namespace %s` (or keyless install again)", strings.Join(missing, ", "), ns)
		case len(unreadable) > 0:
			r.addf(name, StatusWarning, "cannot read %s", strings.Join(unreadable, ", "))
		default:
			r.addf(name, StatusOK, "Role and RoleBinding keyless-controller, ServiceAccount, Role and RoleBinding %s present", kv1.DefaultServiceAccountName)
		}
	}
}

func getObject(ctx context.Context, cs kubernetes.Interface, ns, kind, name string) error {
	var err error
	switch kind {
	case "Role":
		_, err = cs.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{})
	case "RoleBinding":
		_, err = cs.RbacV1().RoleBindings(ns).Get(ctx, name, metav1.GetOptions{})
	case "ServiceAccount":
		_, err = cs.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	default:
		err = fmt.Errorf("unknown kind %s", kind)
	}
	return err
}

func hasArg(d *appsv1.Deployment, flag string) bool {
	return slices.ContainsFunc(containers(d), func(c corev1.Container) bool {
		return slices.Contains(c.Args, flag) || slices.Contains(c.Args, flag+"=true")
	})
}

func hasArgPrefix(d *appsv1.Deployment, flag string) bool {
	return slices.ContainsFunc(containers(d), func(c corev1.Container) bool {
		return slices.ContainsFunc(c.Args, func(a string) bool { return a == flag || strings.HasPrefix(a, flag+"=") })
	})
}

func containers(d *appsv1.Deployment) []corev1.Container { return d.Spec.Template.Spec.Containers }

func orUnknown(v string) string {
	if v == "" {
		return "version unknown"
	}
	return v
}
