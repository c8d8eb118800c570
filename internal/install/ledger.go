package install

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/ledger"
)

// The tamper-evident ledger of the controller (Options.Ledger): its file
// on a PersistentVolumeClaim of the controller's namespace, its signing key
// in a Secret there (created once by Apply, never printed, never in an
// export), its public key in a ConfigMap for auditors.
const (
	// LedgerClaim is the PersistentVolumeClaim holding the ledger file; it
	// is never pruned (its records are evidence).
	LedgerClaim = "keyless-ledger"
	// LedgerMountPath is where the claim is mounted; LedgerFile is the
	// file's name in it.
	LedgerMountPath = "/var/lib/keyless/ledger"
	LedgerFile      = "ledger.jsonl"
	// LedgerKeySecret holds the ed25519 signing key (PKCS#8 PEM) under
	// LedgerKeyFile, mounted read-only at LedgerKeyMountPath.
	LedgerKeySecret    = "keyless-ledger-key"
	LedgerKeyFile      = "ledger.key"
	LedgerKeyMountPath = "/etc/keyless/ledger"
	// LedgerPublicKeyConfigMap holds the public key (PEM) under
	// LedgerPublicKeyFile: what `keyless evidence verify --public-key` takes.
	LedgerPublicKeyConfigMap = "keyless-ledger-public-key"
	LedgerPublicKeyFile      = "ledger.pub"
	// DefaultLedgerSize is the claim's default request.
	DefaultLedgerSize = "1Gi"
	// controllerUID is the controller image's user (distroless nonroot).
	controllerUID = 65532
)

// Ledger configures the controller's ledger.
type Ledger struct {
	// Size is the claim's storage request. Default DefaultLedgerSize.
	Size string
	// StorageClass is the claim's class. Default "": the cluster's default.
	StorageClass string
}

// ledgerClaim is the PersistentVolumeClaim of the ledger, annotated never
// to be pruned.
func ledgerClaim(opts Options) (*unstructured.Unstructured, error) {
	size := opts.Ledger.Size
	if size == "" {
		size = DefaultLedgerSize
	}
	if _, err := resource.ParseQuantity(size); err != nil {
		return nil, fmt.Errorf("ledger size %q: %w", size, err)
	}
	spec := map[string]any{
		"accessModes": []any{"ReadWriteOnce"},
		"resources":   map[string]any{"requests": map[string]any{"storage": size}},
	}
	if opts.Ledger.StorageClass != "" {
		spec["storageClassName"] = opts.Ledger.StorageClass
	}
	pvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": map[string]any{"name": LedgerClaim, "namespace": opts.ControllerNamespace},
		"spec":     spec,
	}}
	setAnnotations(pvc, NoPruneAnnotations)
	return pvc, nil
}

// mountLedger mounts the claim and the key into the Deployment, passes
// them to the controller, and makes the Deployment fit one writer of one
// file: one replica, replaced (not rolled) on update, the volume writable
// by the controller's user.
func mountLedger(d *unstructured.Unstructured) error {
	err := addToController(d, controllerAdditions{
		mounts: []any{
			map[string]any{"name": "ledger", "mountPath": LedgerMountPath},
			map[string]any{"name": "ledger-key", "mountPath": LedgerKeyMountPath, "readOnly": true},
		},
		args: []any{"--ledger-file=" + LedgerMountPath + "/" + LedgerFile, "--ledger-key-file=" + LedgerKeyMountPath + "/" + LedgerKeyFile},
		volumes: []any{
			map[string]any{"name": "ledger", "persistentVolumeClaim": map[string]any{"claimName": LedgerClaim}},
			map[string]any{"name": "ledger-key", "secret": map[string]any{"secretName": LedgerKeySecret, "defaultMode": int64(0o400)}},
		},
		pod: func(spec map[string]any) {
			psc, _ := spec["securityContext"].(map[string]any)
			if psc == nil {
				psc = map[string]any{}
			}
			psc["fsGroup"] = int64(controllerUID) // the claim writable by the controller's user
			spec["securityContext"] = psc
		},
	})
	if err != nil {
		return err
	}
	// One writer: a standby would append after a stale last record.
	if err := unstructured.SetNestedField(d.Object, int64(1), "spec", "replicas"); err != nil {
		return err
	}
	return unstructured.SetNestedMap(d.Object, map[string]any{"type": "Recreate"}, "spec", "strategy")
}

// ledgerDisruptionBudget lets the one replica of a ledger-keeping
// controller be moved by a drain (minAvailable 1 would block it forever).
func ledgerDisruptionBudget(pdb *unstructured.Unstructured) error {
	unstructured.RemoveNestedField(pdb.Object, "spec", "minAvailable")
	return unstructured.SetNestedField(pdb.Object, int64(1), "spec", "maxUnavailable")
}

// ensureLedgerKey creates the signing key's Secret with a new ed25519 key
// when it does not exist (an existing one — the admin's, or an earlier
// install's — is kept: the ledger's records are signed by it), and writes
// its public key into the ConfigMap auditors read.
func ensureLedgerKey(ctx context.Context, cs kubernetes.Interface, opts Options) error {
	ns := opts.ControllerNamespace
	labels := map[string]string{"app.kubernetes.io/managed-by": installManager, NameLabel: DeploymentName, PartOfLabel: PartOf,
		InstanceLabel: opts.Instance, VersionLabel: opts.Version}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: LedgerKeySecret, Namespace: ns, Labels: labels},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{LedgerKeyFile: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})},
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{FieldManager: installManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the ledger key Secret %s/%s: %w", ns, LedgerKeySecret, err)
	}
	got, err := cs.CoreV1().Secrets(ns).Get(ctx, LedgerKeySecret, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the ledger key Secret %s/%s: %w", ns, LedgerKeySecret, err)
	}
	existing, err := ledger.ParsePrivateKey(got.Data[LedgerKeyFile])
	if err != nil {
		return fmt.Errorf("the ledger key Secret %s/%s, key %s: %w", ns, LedgerKeySecret, LedgerKeyFile, err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(existing.Public())
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: LedgerPublicKeyConfigMap, Namespace: ns, Labels: labels},
		Data:       map[string]string{LedgerPublicKeyFile: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))},
	}
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{FieldManager: installManager})
	if apierrors.IsAlreadyExists(err) {
		_, err = cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: installManager})
	}
	if err != nil {
		return fmt.Errorf("writing the ledger's public key to %s/%s: %w", ns, LedgerPublicKeyConfigMap, err)
	}
	return nil
}

// withLedger adapts a controller object to opts.Ledger: the Deployment
// mounts it, the disruption budget lets its one replica move.
func withLedger(o *unstructured.Unstructured, opts Options) error {
	if opts.Ledger == nil || !opts.WithDeployment {
		return nil
	}
	if opts.Replicas > 1 {
		return fmt.Errorf("the ledger has one writer: %d replicas would append after each other's stale records; install it with one replica", opts.Replicas)
	}
	switch o.GetKind() {
	case kindDeployment:
		return mountLedger(o)
	case "PodDisruptionBudget":
		return ledgerDisruptionBudget(o)
	}
	return nil
}
