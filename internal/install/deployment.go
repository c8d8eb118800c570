package install

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
)

// The controller Deployment's names, as config/install/controller has them.
const (
	DeploymentName    = "keyless-controller"
	WebhookSecretName = "keyless-webhook"
	// WebhookSecretKey is the key of the webhook Secret the Deployment mounts.
	WebhookSecretKey = "secret"
	namespacesFlag   = "--namespaces="
)

// ImageRepository is the controller image's name, as make image publishes
// it and config/install/controller names it.
const ImageRepository = "ghcr.io/keyless-cd/keyless"

// customizeDeployment sets the Deployment's image and --namespaces (and adds
// ExtraArgs) for opts.
func customizeDeployment(d *unstructured.Unstructured, opts Options) error {
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		return fmt.Errorf("deployment %s has no container", d.GetName())
	}
	c, ok := containers[0].(map[string]any)
	if !ok {
		return fmt.Errorf("deployment %s: container is not an object", d.GetName())
	}
	if opts.Image != "" {
		c["image"] = opts.Image
	}
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, namespacesFlag) && len(opts.Namespaces) > 0 {
			a = namespacesFlag + strings.Join(opts.Namespaces, ",")
		}
		out = append(out, a)
	}
	out = append(out, opts.ExtraArgs...)
	if opts.Resources != nil {
		c["resources"] = runtime.DeepCopyJSONValue(opts.Resources)
	}
	if opts.Replicas > 0 {
		if err := unstructured.SetNestedField(d.Object, int64(opts.Replicas), "spec", "replicas"); err != nil {
			return err
		}
	}
	anyArgs := make([]any, len(out))
	for i, a := range out {
		anyArgs[i] = a
	}
	c["args"] = anyArgs
	containers[0] = c
	return unstructured.SetNestedSlice(d.Object, containers, "spec", "template", "spec", "containers")
}

// ensureWebhookSecret creates the webhook Secret with a random value when it
// does not exist; an existing one (the admin's, or an earlier install's) is
// kept as it is, so re-running install never breaks the forge's webhooks.
// The value is never printed.
func ensureWebhookSecret(ctx context.Context, cs kubernetes.Interface, opts Options) error {
	ns := opts.ControllerNamespace
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: WebhookSecretName, Namespace: ns, Labels: map[string]string{
			"app.kubernetes.io/managed-by": installManager, NameLabel: DeploymentName, PartOfLabel: PartOf,
			InstanceLabel: opts.Instance, VersionLabel: opts.Version,
		}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{WebhookSecretKey: []byte(hex.EncodeToString(b))},
	}
	_, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{FieldManager: installManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the webhook Secret %s/%s: %w", ns, WebhookSecretName, err)
	}
	return nil
}

// ensureSecrets creates, with WithDeployment, the Secrets no manifest
// carries: the webhook's, and with Ledger the ledger's signing key.
func ensureSecrets(ctx context.Context, cs kubernetes.Interface, opts Options) error {
	if !opts.WithDeployment {
		return nil
	}
	if err := ensureWebhookSecret(ctx, cs, opts); err != nil {
		return err
	}
	if opts.Ledger != nil {
		return ensureLedgerKey(ctx, cs, opts)
	}
	return nil
}
