// Package install applies the cluster admin's part of a keyless install: the
// Application CRD, the controller's namespace with its namespaced RBAC, and for
// each managed namespace the controller's Role and the keyless-deployer
// ServiceAccount. It never creates a ClusterRole or ClusterRoleBinding: the
// manifests are the ones in config/, embedded in the binary.
package install

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	// Timeout bounds waiting for the CRD to be served. Default 1m.
	Timeout time.Duration
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Apply installs keyless with cfg (a cluster admin's credentials): namespaces
// are created when missing, everything else is applied server-side, and it
// returns once the Application API is served.
func Apply(ctx context.Context, cfg *rest.Config, opts Options) error {
	if opts.ControllerNamespace == "" {
		opts.ControllerNamespace = DefaultControllerNamespace
	}
	if opts.Timeout == 0 {
		opts.Timeout = time.Minute
	}
	if opts.PodSecurity == "" {
		opts.PodSecurity = PodSecurityRestricted
	}
	root, err := extract()
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(root) }()

	crds, err := render.Render(ctx, render.Options{Root: root, Path: "crd"})
	if err != nil {
		return fmt.Errorf("rendering the CRD: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, o := range crds.Objects {
		if _, err := dyn.Resource(crdGVR).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: installManager, Force: true}); err != nil {
			return fmt.Errorf("applying CustomResourceDefinition %s: %w", o.GetName(), err)
		}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, ns := range append([]string{opts.ControllerNamespace}, opts.Namespaces...) {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	for _, ns := range opts.Namespaces {
		if err := labelPodSecurity(ctx, cs, ns, opts.PodSecurity); err != nil {
			return err
		}
	}
	eng, err := engine.New(cfg)
	if err != nil {
		return err
	}
	ctl, err := render.Render(ctx, render.Options{Root: root, Path: "install/controller", Namespace: opts.ControllerNamespace})
	if err != nil {
		return fmt.Errorf("rendering install/controller: %w", err)
	}
	var objs []*unstructured.Unstructured
	for _, o := range ctl.Objects {
		switch o.GetKind() {
		case "Namespace":
			continue
		case "Deployment", "Secret":
			if !opts.WithDeployment {
				continue
			}
		}
		o.SetNamespace(opts.ControllerNamespace)
		objs = append(objs, o)
	}
	if _, err := eng.Apply(ctx, objs, engine.ApplyOptions{Namespace: opts.ControllerNamespace, Name: installManager}); err != nil {
		return fmt.Errorf("installing the controller into %s: %w", opts.ControllerNamespace, err)
	}
	for _, ns := range opts.Namespaces {
		per, err := render.Render(ctx, render.Options{Root: root, Path: "install/namespace", Namespace: ns})
		if err != nil {
			return fmt.Errorf("rendering install/namespace: %w", err)
		}
		for _, o := range per.Objects {
			o.SetNamespace(ns)
			if o.GetKind() == "RoleBinding" {
				setControllerSubjectNamespace(o, opts.ControllerNamespace)
			}
		}
		if _, err := eng.Apply(ctx, per.Objects, engine.ApplyOptions{Namespace: ns, Name: installManager}); err != nil {
			return fmt.Errorf("installing into namespace %s: %w", ns, err)
		}
	}
	return waitServed(ctx, dyn, opts)
}

// Pod Security Admission labels and levels.
const (
	PodSecurityEnforceLabel = "pod-security.kubernetes.io/enforce"
	PodSecurityAuditLabel   = "pod-security.kubernetes.io/audit"
	PodSecurityWarnLabel    = "pod-security.kubernetes.io/warn"
	PodSecurityRestricted   = "restricted"
)

// labelPodSecurity sets the Pod Security Admission labels of namespace ns.
func labelPodSecurity(ctx context.Context, cs kubernetes.Interface, ns, level string) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q,%q:%q,%q:%q}}}`,
		PodSecurityEnforceLabel, level, PodSecurityAuditLabel, level, PodSecurityWarnLabel, level)
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: installManager}); err != nil {
		return fmt.Errorf("labelling namespace %s for Pod Security %q: %w", ns, level, err)
	}
	return nil
}

// setControllerSubjectNamespace points the keyless-controller subject at the
// controller's namespace.
func setControllerSubjectNamespace(rb *unstructured.Unstructured, ns string) {
	subjects, _, _ := unstructured.NestedSlice(rb.Object, "subjects")
	for _, s := range subjects {
		if m, ok := s.(map[string]any); ok && m["name"] == "keyless-controller" {
			m["namespace"] = ns
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
