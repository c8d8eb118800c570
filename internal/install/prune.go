package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keyless-cd/keyless/internal/engine"
)

// ErrDropsNamespaces is what Apply refuses without Options.PruneNamespaces:
// the new namespace list leaves out namespaces the installed controller
// manages. The error is a *DropsNamespacesError naming them.
var ErrDropsNamespaces = errors.New("the namespace list drops namespaces the controller manages")

// DropsNamespacesError names the namespaces a shrinking --namespaces would
// drop. It wraps ErrDropsNamespaces.
type DropsNamespacesError struct {
	// ControllerNamespace is where the installed controller runs.
	ControllerNamespace string
	// Managed is the installed controller's --namespaces; Dropped the ones
	// the new list leaves out.
	Managed, Dropped []string
}

func (e *DropsNamespacesError) Error() string {
	return fmt.Sprintf("the controller in %s manages %s; the new list would drop %s (their Applications would no longer be synced, keyless's Roles left behind): "+
		"name them too, or pass --prune-namespaces to drop them and remove keyless's Roles, RoleBindings and ServiceAccount from them",
		e.ControllerNamespace, strings.Join(e.Managed, ", "), strings.Join(e.Dropped, ", "))
}

func (e *DropsNamespacesError) Unwrap() error { return ErrDropsNamespaces }

// ManagedNamespaces returns the namespaces the controller installed in
// controllerNamespace manages: its Deployment's --namespaces. None (and no
// error) when there is no Deployment.
func ManagedNamespaces(ctx context.Context, cs kubernetes.Interface, controllerNamespace string) ([]string, error) {
	d, err := cs.AppsV1().Deployments(controllerNamespace).Get(ctx, DeploymentName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the managed namespaces from deployment %s/%s: %w", controllerNamespace, DeploymentName, err)
	}
	var out []string
	for _, c := range d.Spec.Template.Spec.Containers {
		for i, a := range c.Args {
			v, ok := strings.CutPrefix(a, namespacesFlag)
			if !ok && a == strings.TrimSuffix(namespacesFlag, "=") && i+1 < len(c.Args) {
				v, ok = c.Args[i+1], true
			}
			if !ok {
				continue
			}
			for _, ns := range strings.Split(v, ",") {
				if ns = strings.TrimSpace(ns); ns != "" && !slices.Contains(out, ns) {
					out = append(out, ns)
				}
			}
		}
	}
	return out, nil
}

// droppedNamespaces returns the managed namespaces next leaves out.
func droppedNamespaces(managed, next []string) []string {
	var out []string
	for _, ns := range managed {
		if !slices.Contains(next, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// pruneNamespaces removes what install created in each of namespaces: the
// controller's and the deployer's Roles and RoleBindings, the
// keyless-deployer ServiceAccount and install's inventory ConfigMap. The
// namespaces, their workloads and their Applications stay. Each deleted
// object is written to out as Kind/namespace/name.
func pruneNamespaces(ctx context.Context, cfg *rest.Config, opts Options, namespaces []string, out io.Writer) error {
	if len(namespaces) == 0 {
		return nil
	}
	m, err := Render(ctx, Options{ControllerNamespace: opts.ControllerNamespace, Namespaces: namespaces})
	if err != nil {
		return err
	}
	var objs []*unstructured.Unstructured
	for _, ns := range namespaces {
		objs = append(objs, m.PerNamespace[ns]...)
		inv := &unstructured.Unstructured{}
		inv.SetAPIVersion("v1")
		inv.SetKind("ConfigMap")
		inv.SetNamespace(ns)
		inv.SetName(engine.InventoryConfigMapPrefix + installManager)
		objs = append(objs, inv)
	}
	deleted, err := deleteObjects(ctx, cfg, objs)
	for _, d := range deleted {
		_, _ = fmt.Fprintf(out, "pruned %s\n", d)
	}
	return err
}
