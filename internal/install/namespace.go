package install

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

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

// NamespaceApply configures ApplyNamespace.
type NamespaceApply struct {
	// Namespace is the managed namespace; created when missing.
	Namespace string
	// PodSecurity is the Pod Security level it is labelled with (enforce,
	// audit and warn). Default PodSecurityRestricted.
	PodSecurity string
	// Objects are ForManifests's.
	Objects []*unstructured.Unstructured
	// DryRun writes nothing: the label change and the objects go to the API
	// server as a server-side dry-run, and NamespaceResult says what would
	// change. Default false.
	DryRun bool
}

// NamespaceResult is what ApplyNamespace changed, or with DryRun would.
type NamespaceResult struct {
	// Created: the namespace did not exist.
	Created bool
	// Labels are the Pod Security labels that change, as "key: old → new"
	// (old "(none)" when unset), sorted.
	Labels []string
	// PodSecurityWarnings are the API server's warnings for the new level:
	// the running pods that violate it (the level is enforced on new pods
	// only; these keep running until replaced, then are refused).
	PodSecurityWarnings []string
	// Objects are the objects' changes (engine's dry-run in DryRun).
	Objects *engine.Result
}

// warningCollector collects the API server's warnings instead of logging
// them (client-go's default handler writes them as klog lines).
type warningCollector struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningCollector) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Contains(w.warnings, text) {
		w.warnings = append(w.warnings, text)
	}
}

// ApplyNamespace creates namespace opts.Namespace when missing, labels it
// for Pod Security and applies opts.Objects (ForManifests's) into it with
// the admin's cfg. The label change is sent as a server-side dry-run first:
// the API server's Pod Security warnings (running pods the level would
// refuse) are returned, never logged. With DryRun nothing is written.
func ApplyNamespace(ctx context.Context, cfg *rest.Config, opts NamespaceApply) (*NamespaceResult, error) {
	if opts.PodSecurity == "" {
		opts.PodSecurity = PodSecurityRestricted
	}
	if err := ValidatePodSecurity(opts.PodSecurity); err != nil {
		return nil, err
	}
	warnings := &warningCollector{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = warnings
	cfg.WarningHandlerWithContext = nil
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ns := opts.Namespace
	res := &NamespaceResult{}
	live, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		res.Created = true
		live = &corev1.Namespace{}
	case err != nil:
		return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	for _, k := range []string{PodSecurityAuditLabel, PodSecurityEnforceLabel, PodSecurityWarnLabel} {
		if old := live.Labels[k]; old != opts.PodSecurity {
			res.Labels = append(res.Labels, fmt.Sprintf("%s: %s → %s", k, cmp.Or(old, "(none)"), opts.PodSecurity))
		}
	}
	if res.Created {
		// A new namespace has no pods to warn about, and nothing can be
		// dry-run inside it.
		if opts.DryRun {
			res.Objects = &engine.Result{}
			for _, o := range opts.Objects {
				res.Objects.Changes = append(res.Objects.Changes, engine.Change{Ref: engine.RefOf(o), Action: engine.ActionCreated})
			}
			return res, nil
		}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{FieldManager: installManager}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	} else if len(res.Labels) > 0 {
		if err := patchPodSecurity(ctx, cs, ns, opts.PodSecurity, true); err != nil {
			return nil, err
		}
		res.PodSecurityWarnings = warnings.take()
	}
	if !opts.DryRun && len(res.Labels) > 0 {
		if err := patchPodSecurity(ctx, cs, ns, opts.PodSecurity, false); err != nil {
			return nil, err
		}
	}
	eng, err := engine.New(cfg)
	if err != nil {
		return nil, err
	}
	res.Objects, err = eng.Apply(ctx, opts.Objects, engine.ApplyOptions{Namespace: ns, Name: installManager, TrustRBAC: true, DryRun: opts.DryRun})
	if err != nil {
		return res, fmt.Errorf("installing into namespace %s: %w", ns, err)
	}
	return res, nil
}

// take returns the warnings collected so far and forgets them.
func (w *warningCollector) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.warnings
	w.warnings = nil
	return out
}
