package install

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/rbacgen"
	"github.com/keyless-cd/keyless/internal/render"
)

// DeployerVerbs are what the deployer may do to each kind its manifests
// hold: read, apply (server-side apply is a patch; create for the first
// time) and prune. No watch: the controller watches with its own identity.
var DeployerVerbs = []string{"get", "list", "create", "patch", "update", "delete"}

// watchVerbs are the controller's metadata-only watch rights on managed kinds.
var watchVerbs = []string{"list", "watch"}

// Role names in config/install/namespace.
const (
	deployerRole   = "keyless-deployer"
	controllerRole = "keyless-controller"
)

// NamespaceOptions configure ForManifests.
type NamespaceOptions struct {
	// Namespace is the managed namespace.
	Namespace string
	// ControllerNamespace: as for Options.
	ControllerNamespace string
	// Manifests are what the namespace's Applications render to.
	Manifests *render.Result
}

// ForManifests returns namespace opts.Namespace's install with its deployer
// Role listing exactly the kinds the manifests hold (DeployerVerbs), and the
// controller's watch rules exactly those kinds: nothing else to write, nothing
// else to watch. Cluster-scoped kinds in the manifests are refused.
func ForManifests(ctx context.Context, opts NamespaceOptions) ([]*unstructured.Unstructured, error) {
	kinds, err := rbacgen.Collect(opts.Manifests, "the deployer's Role")
	if err != nil {
		return nil, err
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("the manifests render to no object: nothing to derive the deployer's Role from")
	}
	m, err := Render(ctx, Options{Namespaces: []string{opts.Namespace}, ControllerNamespace: opts.ControllerNamespace})
	if err != nil {
		return nil, err
	}
	objs := m.PerNamespace[opts.Namespace]
	var deploy, watch []rbacv1.PolicyRule
	for _, g := range kinds.Groups() {
		watch = append(watch, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: kinds.Resources(g), Verbs: watchVerbs})
		if !rbacgen.IsRBAC(g) {
			deploy = append(deploy, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: kinds.Resources(g), Verbs: DeployerVerbs})
			continue
		}
		// Roles and RoleBindings: only the manifests' own, by name.
		for _, r := range kinds.Resources(g) {
			deploy = append(deploy, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: []string{r}, ResourceNames: kinds.Names(g, r), Verbs: rbacgen.RBACVerbs})
		}
	}
	for _, o := range objs {
		if o.GetKind() != "Role" {
			continue
		}
		role := &rbacv1.Role{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, role); err != nil {
			return nil, fmt.Errorf("role %s: %w", o.GetName(), err)
		}
		switch o.GetName() {
		case deployerRole:
			role.Rules = deploy
		case controllerRole:
			// Keep the controller's own rules; its watch rules become the manifests' kinds.
			role.Rules = slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Equal(r.Verbs, watchVerbs) })
			role.Rules = append(role.Rules, watch...)
		default:
			continue
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(role)
		if err != nil {
			return nil, err
		}
		o.Object = u
		o.SetAPIVersion(rbacv1.SchemeGroupVersion.String())
		o.SetKind("Role")
	}
	return objs, nil
}

// ApplyNamespace creates namespace ns when missing, labels it for Pod
// Security (level, default restricted) and applies objs (ForManifests's)
// into it with the admin's cfg.
func ApplyNamespace(ctx context.Context, cfg *rest.Config, ns, level string, objs []*unstructured.Unstructured) error {
	if level == "" {
		level = PodSecurityRestricted
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	if err := labelPodSecurity(ctx, cs, ns, level); err != nil {
		return err
	}
	eng, err := engine.New(cfg)
	if err != nil {
		return err
	}
	if _, err := eng.Apply(ctx, objs, engine.ApplyOptions{Namespace: ns, Name: installManager, TrustRBAC: true}); err != nil {
		return fmt.Errorf("installing into namespace %s: %w", ns, err)
	}
	return nil
}
