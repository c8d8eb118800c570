package install

import (
	"context"
	"fmt"
	"io"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// WaitReady waits until the controller Deployment in ns has rolled out: every
// replica updated and available. It reports progress to progress every few
// seconds, and says what it last saw when timeout ends.
func WaitReady(ctx context.Context, cfg *rest.Config, ns string, timeout time.Duration, progress io.Writer) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var last string
	lastPrinted := time.Time{}
	err = wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, DeploymentName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil //nolint:nilerr // not there yet: poll again
		}
		done := rolledOut(d)
		last = fmt.Sprintf("%d/%d replicas available, %d updated", d.Status.AvailableReplicas, replicas(d), d.Status.UpdatedReplicas)
		if !done && time.Since(lastPrinted) > 5*time.Second {
			_, _ = fmt.Fprintf(progress, "waiting for deployment %s/%s: %s\n", ns, DeploymentName, last)
			lastPrinted = time.Now()
		}
		return done, nil
	})
	if err != nil {
		return fmt.Errorf("the controller is not ready after %s (%s): see kubectl -n %s describe deployment %s: %w", timeout, last, ns, DeploymentName, err)
	}
	return nil
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func rolledOut(d *appsv1.Deployment) bool {
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == replicas(d) &&
		d.Status.AvailableReplicas == replicas(d) && d.Status.Replicas == replicas(d)
}

// UninstallOptions configure Uninstall.
type UninstallOptions struct {
	// ControllerNamespace and Namespaces: as for Apply.
	ControllerNamespace string
	Namespaces          []string
	// DeleteCRD also deletes the Application CRD — and with it every
	// Application in the cluster. The caller must have asked.
	DeleteCRD bool
}

// Uninstall deletes what Apply created, except namespaces (they may hold a
// team's workloads) and, unless DeleteCRD, the CRD. The credential-mount
// policy (Options.CredentialMountPolicy) and the monitoring objects
// (Options.Monitoring) are deleted when they are there. It returns what it
// deleted as Kind/namespace/name; objects already gone are skipped.
func Uninstall(ctx context.Context, cfg *rest.Config, opts UninstallOptions) ([]string, error) {
	m, err := Render(ctx, Options{ControllerNamespace: opts.ControllerNamespace, Namespaces: opts.Namespaces, WithDeployment: true, CredentialMountPolicy: true, Monitoring: true})
	if err != nil {
		return nil, err
	}
	if opts.ControllerNamespace == "" {
		opts.ControllerNamespace = DefaultControllerNamespace
	}
	secret := &unstructured.Unstructured{}
	secret.SetAPIVersion("v1")
	secret.SetKind("Secret")
	secret.SetName(WebhookSecretName)
	secret.SetNamespace(opts.ControllerNamespace)
	var objs []*unstructured.Unstructured
	for _, ns := range opts.Namespaces {
		objs = append(objs, m.PerNamespace[ns]...)
	}
	objs = append(append(append(objs, m.Controller...), secret), m.Policies...)
	if opts.DeleteCRD {
		objs = append(objs, m.CRDs...)
	}
	return deleteObjects(ctx, cfg, objs)
}

// deleteObjects deletes objs (by kind, namespace and name) and returns what
// it deleted as Kind/namespace/name; objects already gone are skipped, and
// admission policy kinds the API server does not serve too.
func deleteObjects(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) ([]string, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	var deleted []string
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			continue // an API server without the kind (ValidatingAdmissionPolicy v1, Prometheus Operator's) has none to delete
		}
		if err != nil {
			return deleted, fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if o.GetNamespace() != "" {
			ri = dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
		}
		err = ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return deleted, fmt.Errorf("deleting %s %s/%s: %w", gvk.Kind, o.GetNamespace(), o.GetName(), err)
		}
		deleted = append(deleted, fmt.Sprintf("%s/%s/%s", gvk.Kind, o.GetNamespace(), o.GetName()))
	}
	return deleted, nil
}
