// Package install applies the cluster admin's part of a keyless install: the
// Application CRD, the controller's namespace with its namespaced RBAC, and for
// each managed namespace the controller's Role and the keyless-deployer
// ServiceAccount. It never creates a ClusterRole or ClusterRoleBinding: the
// manifests are the ones in config/, embedded in the binary.
package install

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keyless-cd/keyless/config"
	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/render"
	"github.com/keyless-cd/keyless/internal/version"
)

// installManager is the field manager and inventory name of what
// `keyless install` applies.
const installManager = "keyless-install"

// DefaultControllerNamespace is where the controller runs.
const DefaultControllerNamespace = "keyless-system"

// Options configure Apply.
type Options struct {
	// ControllerNamespace is the controller's own namespace. Default
	// DefaultControllerNamespace (the manifests' namespace).
	ControllerNamespace string
	// Namespaces are the managed namespaces; each gets config/install/namespace.
	Namespaces []string
	// PodSecurity is the Pod Security Admission level every managed
	// namespace is labelled with (enforce, audit and warn). Default
	// "restricted": a pod a repository pusher commits gets no host access,
	// no privilege and no root.
	PodSecurity string
	// WithDeployment also applies the controller Deployment and its webhook
	// Secret. Default false: the caller runs the controller itself (tests,
	// `keyless-dev demo`) as the keyless-controller ServiceAccount.
	WithDeployment bool
	// Image is the controller image (pin it by digest). Default the
	// manifests' (ghcr.io/keyless-cd/keyless).
	Image string
	// ExtraArgs are more `keyless controller` flags for the Deployment.
	ExtraArgs []string
	// Trust, when set, is the controller's signed-artifact trust: files of
	// the ConfigMap TrustConfigMap mounted at TrustMountPath — policy.yaml
	// (the FederationPolicy, its CA files among the other keys and named by
	// their mounted paths) and trusted_root.json — and passed as
	// --trust-policy and --trusted-root. Default nil: none.
	Trust map[string][]byte
	// Ledger, with WithDeployment, makes the controller keep the signed,
	// hash-chained ledger (ledger.go): a PersistentVolumeClaim for the file
	// (never pruned), the signing key in a Secret Apply creates once, the
	// public key in a ConfigMap; one replica (one writer), recreated on
	// update. Default nil: no ledger.
	Ledger *Ledger
	// Timeout bounds waiting for the CRD to be served. Default 1m.
	Timeout time.Duration
	// CredentialMountPolicy also applies config/install/policy: a
	// cluster-wide ValidatingAdmissionPolicy refusing Pods and workloads that
	// mount or env-reference a Secret labelled keyless.dev/credential (needs
	// Kubernetes 1.30 or later). Default false: it is optional.
	CredentialMountPolicy bool
	// Replicas of the controller Deployment. Default 0: the manifests' (2,
	// leader-elected).
	Replicas int32
	// Resources replace the controller container's requests and limits.
	// Default nil: the manifests' (docs/install.md, "Sizing: memory").
	Resources map[string]any
	// Version is the app.kubernetes.io/version label of every object.
	// Default this binary's version (version.Version()).
	Version string
	// Instance is the app.kubernetes.io/instance label of every object.
	// Default DefaultInstance.
	Instance string
	// PruneNamespaces lets Apply drop namespaces the installed controller
	// manages (its --namespaces) that Namespaces leaves out, and removes
	// what install created in each of them (keyless's Roles, RoleBindings
	// and the keyless-deployer ServiceAccount; the namespace and its
	// workloads stay). Default false: Apply refuses a shrinking list with
	// an *ErrDropsNamespaces naming them.
	PruneNamespaces bool
	// Monitoring also installs config/install/monitoring into the
	// controller's namespace: a Prometheus Operator ServiceMonitor and the
	// alerts as a PrometheusRule (the cluster needs the operator's CRDs).
	// Default false.
	Monitoring bool
	// Out receives a line per object Apply prunes, and the API server's Pod
	// Security warnings. Default io.Discard.
	Out io.Writer
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Manifests are the whole install, rendered from the embedded config/ for
// one set of Options, in the order they are applied.
type Manifests struct {
	// CRDs are the Application CustomResourceDefinition.
	CRDs []*unstructured.Unstructured
	// Namespaces are the controller's and each managed one (with its Pod
	// Security labels).
	Namespaces []*unstructured.Unstructured
	// Controller are the objects in the controller's namespace: its
	// ServiceAccount and Role, and with WithDeployment the Deployment, its
	// Service and NetworkPolicy. The webhook Secret is never among them:
	// Apply creates it with a random value, and an export leaves it to the
	// admin (its value must not be in Git).
	Controller []*unstructured.Unstructured
	// PerNamespace are each managed namespace's controller Role and
	// keyless-deployer, by namespace.
	PerNamespace map[string][]*unstructured.Unstructured
	// Policies are, with CredentialMountPolicy, the cluster-scoped
	// ValidatingAdmissionPolicy and its binding; else none.
	Policies []*unstructured.Unstructured
}

// All returns every object, in apply order.
func (m *Manifests) All(namespaces []string) []*unstructured.Unstructured {
	out := append(append(append(append([]*unstructured.Unstructured{}, m.Namespaces...), m.CRDs...), m.Policies...), m.Controller...)
	for _, ns := range namespaces {
		out = append(out, m.PerNamespace[ns]...)
	}
	return out
}

func (o *Options) withDefaults() {
	if o.ControllerNamespace == "" {
		o.ControllerNamespace = DefaultControllerNamespace
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.PodSecurity == "" {
		o.PodSecurity = PodSecurityRestricted
	}
	if o.Version == "" {
		o.Version = version.Version()
	}
	o.Version = labelValue(o.Version)
	if o.Instance == "" {
		o.Instance = DefaultInstance
	}
}

// Render renders the install for opts without touching a cluster.
func Render(ctx context.Context, opts Options) (*Manifests, error) {
	opts.withDefaults()
	root, err := extract()
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(root) }()
	m := &Manifests{PerNamespace: map[string][]*unstructured.Unstructured{}}
	crds, err := render.Render(ctx, render.Options{Root: root, Path: "crd"})
	if err != nil {
		return nil, fmt.Errorf("rendering the CRD: %w", err)
	}
	m.CRDs = crds.Objects
	if opts.CredentialMountPolicy {
		pol, err := render.Render(ctx, render.Options{Root: root, Path: policyPath})
		if err != nil {
			return nil, fmt.Errorf("rendering %s: %w", policyPath, err)
		}
		m.Policies = pol.Objects
	}
	m.Namespaces = append(m.Namespaces, namespace(opts.ControllerNamespace, PodSecurityRestricted))
	for _, ns := range opts.Namespaces {
		n := namespace(ns, opts.PodSecurity)
		// A team's namespace holds its workloads: no pruner deletes it
		// when the team leaves the list.
		setAnnotations(n, NoPruneAnnotations)
		m.Namespaces = append(m.Namespaces, n)
	}
	for _, crd := range m.CRDs {
		setAnnotations(crd, NoPruneAnnotations)
	}
	ctl, err := render.Render(ctx, render.Options{Root: root, Path: "install/controller", Namespace: opts.ControllerNamespace})
	if err != nil {
		return nil, fmt.Errorf("rendering install/controller: %w", err)
	}
	for _, o := range ctl.Objects {
		switch o.GetKind() {
		case "Namespace", "Secret":
			continue
		case kindDeployment, "Service", "NetworkPolicy", "PodDisruptionBudget":
			if !opts.WithDeployment {
				continue
			}
		}
		o.SetNamespace(opts.ControllerNamespace)
		if o.GetKind() == kindDeployment {
			if err := customizeDeployment(o, opts); err != nil {
				return nil, err
			}
			if len(opts.Trust) > 0 {
				if err := mountTrust(o); err != nil {
					return nil, err
				}
			}
		}
		if err := withLedger(o, opts); err != nil {
			return nil, err
		}
		m.Controller = append(m.Controller, o)
	}
	if opts.Ledger != nil && opts.WithDeployment {
		pvc, err := ledgerClaim(opts)
		if err != nil {
			return nil, err
		}
		m.Controller = append(m.Controller, pvc)
	}
	if len(opts.Trust) > 0 {
		cm, err := trustConfigMap(opts)
		if err != nil {
			return nil, fmt.Errorf("%w (files given: %v)", err, trustKeys(opts.Trust))
		}
		m.Controller = append(m.Controller, cm)
	}
	if opts.Monitoring {
		mon, err := render.Render(ctx, render.Options{Root: root, Path: monitoringPath, Namespace: opts.ControllerNamespace})
		if err != nil {
			return nil, fmt.Errorf("rendering %s: %w", monitoringPath, err)
		}
		for _, o := range mon.Objects {
			o.SetNamespace(opts.ControllerNamespace)
			m.Controller = append(m.Controller, o)
		}
	}
	for _, ns := range opts.Namespaces {
		per, err := render.Render(ctx, render.Options{Root: root, Path: "install/namespace", Namespace: ns})
		if err != nil {
			return nil, fmt.Errorf("rendering install/namespace: %w", err)
		}
		for _, o := range per.Objects {
			o.SetNamespace(ns)
			if o.GetKind() == "RoleBinding" {
				setControllerSubjectNamespace(o, opts.ControllerNamespace)
			}
		}
		m.PerNamespace[ns] = per.Objects
	}
	for _, o := range m.All(opts.Namespaces) {
		setCommonLabels(o, opts.Instance, opts.Version)
	}
	return m, nil
}

func namespace(name, podSecurity string) *unstructured.Unstructured {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	if podSecurity != "" {
		ns.SetLabels(map[string]string{PodSecurityEnforceLabel: podSecurity, PodSecurityAuditLabel: podSecurity, PodSecurityWarnLabel: podSecurity})
	}
	return ns
}

// Apply installs keyless with cfg (a cluster admin's credentials): namespaces
// are created when missing, everything else is applied server-side, and it
// returns once the Application API is served. Re-running it upgrades: what
// changed is applied, nothing else is touched.
func Apply(ctx context.Context, cfg *rest.Config, opts Options) error {
	opts.withDefaults()
	if opts.WithDeployment && len(opts.Namespaces) == 0 {
		return errors.New("the controller needs at least one namespace to manage")
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var dropped []string
	if opts.WithDeployment {
		managed, err := ManagedNamespaces(ctx, cs, opts.ControllerNamespace)
		if err != nil {
			return err
		}
		dropped = droppedNamespaces(managed, opts.Namespaces)
		if len(dropped) > 0 && !opts.PruneNamespaces {
			return &DropsNamespacesError{ControllerNamespace: opts.ControllerNamespace, Managed: managed, Dropped: dropped}
		}
	}
	m, err := Render(ctx, opts)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, o := range m.CRDs {
		if _, err := dyn.Resource(crdGVR).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: installManager, Force: true}); err != nil {
			return fmt.Errorf("applying CustomResourceDefinition %s: %w", o.GetName(), err)
		}
	}
	if err := applyPolicies(ctx, dyn, m.Policies); err != nil {
		return err
	}
	for _, ns := range append([]string{opts.ControllerNamespace}, opts.Namespaces...) {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	// The API server's Pod Security warnings (running pods a level
	// refuses) are reported on Out, not logged by client-go.
	warnings := &warningCollector{}
	labelCfg := rest.CopyConfig(cfg)
	labelCfg.WarningHandler, labelCfg.WarningHandlerWithContext = warnings, nil
	labelCS, err := kubernetes.NewForConfig(labelCfg)
	if err != nil {
		return err
	}
	out := cmp.Or[io.Writer](opts.Out, io.Discard)
	label := func(ns, level string) error {
		if err := labelPodSecurity(ctx, labelCS, ns, level); err != nil {
			return err
		}
		for _, w := range warnings.take() {
			_, _ = fmt.Fprintf(out, "warning: namespace %s, Pod Security %q: %s\n", ns, level, w)
		}
		return nil
	}
	if err := label(opts.ControllerNamespace, PodSecurityRestricted); err != nil {
		return err
	}
	for _, ns := range opts.Namespaces {
		if err := label(ns, opts.PodSecurity); err != nil {
			return err
		}
	}
	if err := ensureSecrets(ctx, cs, opts); err != nil {
		return err
	}
	eng, err := engine.New(cfg)
	if err != nil {
		return err
	}
	if _, err := eng.Apply(ctx, m.Controller, engine.ApplyOptions{Namespace: opts.ControllerNamespace, Name: installManager, TrustRBAC: true}); err != nil {
		return fmt.Errorf("installing the controller into %s: %w", opts.ControllerNamespace, err)
	}
	for _, ns := range opts.Namespaces {
		if _, err := eng.Apply(ctx, m.PerNamespace[ns], engine.ApplyOptions{Namespace: ns, Name: installManager, TrustRBAC: true}); err != nil {
			return fmt.Errorf("installing into namespace %s: %w", ns, err)
		}
	}
	if err := pruneNamespaces(ctx, cfg, opts, dropped, out); err != nil {
		return fmt.Errorf("pruning the dropped namespaces %s: %w", strings.Join(dropped, ", "), err)
	}
	return waitServed(ctx, dyn, opts)
}

// Pod Security Admission labels and levels.
const (
	PodSecurityEnforceLabel = "pod-security.kubernetes.io/enforce"
	PodSecurityAuditLabel   = "pod-security.kubernetes.io/audit"
	PodSecurityWarnLabel    = "pod-security.kubernetes.io/warn"
	PodSecurityRestricted   = "restricted"
	PodSecurityBaseline     = "baseline"
	PodSecurityPrivileged   = "privileged"
)

// PodSecurityLevels are the Pod Security Standards' levels, strictest first.
var PodSecurityLevels = []string{PodSecurityRestricted, PodSecurityBaseline, PodSecurityPrivileged}

// ValidatePodSecurity refuses a level that is not one of PodSecurityLevels.
func ValidatePodSecurity(level string) error {
	if !slices.Contains(PodSecurityLevels, level) {
		return fmt.Errorf("pod security level %q: want one of %s", level, strings.Join(PodSecurityLevels, ", "))
	}
	return nil
}

// labelPodSecurity sets the Pod Security Admission labels of namespace ns.
func labelPodSecurity(ctx context.Context, cs kubernetes.Interface, ns, level string) error {
	return patchPodSecurity(ctx, cs, ns, level, false)
}

// patchPodSecurity sets the Pod Security Admission labels of namespace ns,
// or with dryRun sends the change as a server-side dry-run (the API server
// answers with warnings naming the running pods the level would refuse).
func patchPodSecurity(ctx context.Context, cs kubernetes.Interface, ns, level string, dryRun bool) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q,%q:%q,%q:%q}}}`,
		PodSecurityEnforceLabel, level, PodSecurityAuditLabel, level, PodSecurityWarnLabel, level)
	po := metav1.PatchOptions{FieldManager: installManager}
	if dryRun {
		po.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(patch), po); err != nil {
		return fmt.Errorf("labelling namespace %s for Pod Security %q: %w", ns, level, err)
	}
	return nil
}

// setControllerSubjectNamespace points the keyless-controller subject at the
// controller's namespace, and a ServiceAccount subject with no namespace at
// the binding's own (what it means; kustomize build writes it so).
func setControllerSubjectNamespace(rb *unstructured.Unstructured, ns string) {
	subjects, _, _ := unstructured.NestedSlice(rb.Object, "subjects")
	for _, s := range subjects {
		m, ok := s.(map[string]any)
		switch {
		case !ok:
		case m["name"] == "keyless-controller":
			m["namespace"] = ns
		case m["kind"] == "ServiceAccount" && m["namespace"] == nil:
			m["namespace"] = rb.GetNamespace()
		}
	}
	_ = unstructured.SetNestedSlice(rb.Object, subjects, "subjects")
}

// waitServed waits until Applications can be listed.
func waitServed(ctx context.Context, dyn dynamic.Interface, opts Options) error {
	apps := schema.GroupVersionResource{Group: "keyless.dev", Version: "v1alpha1", Resource: "applications"}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, opts.Timeout, true, func(ctx context.Context) (bool, error) {
		_, last = dyn.Resource(apps).Namespace(opts.ControllerNamespace).List(ctx, metav1.ListOptions{Limit: 1})
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the Application API is not served after %s: %w", opts.Timeout, cmp.Or(last, err))
	}
	return nil
}

// extract writes the embedded manifests to a temporary directory for render.
func extract() (string, error) {
	dir, err := os.MkdirTemp("", "keyless-install-")
	if err != nil {
		return "", err
	}
	err = fs.WalkDir(config.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := config.FS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("extracting the install manifests: %w", err)
	}
	return dir, nil
}
