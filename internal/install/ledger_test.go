package install

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/ledger"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestInstallKeepsTheLedger: with Options.Ledger the Deployment writes the
// ledger to a never-pruned claim, signs with the mounted key, runs one
// replica replaced on update with a volume its user can write, and the
// disruption budget lets that replica move; more replicas are refused.
func TestInstallKeepsTheLedger(t *testing.T) {
	m, err := Render(t.Context(), Options{Namespaces: []string{"team-a"}, WithDeployment: true, Ledger: &Ledger{Size: "5Gi", StorageClass: "retained"}})
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]*unstructured.Unstructured{}
	for _, o := range m.Controller {
		byKind[o.GetKind()] = o
	}
	pvc := byKind["PersistentVolumeClaim"]
	if pvc == nil || pvc.GetName() != LedgerClaim {
		t.Fatalf("no claim %s among the controller's objects", LedgerClaim)
	}
	for k, v := range NoPruneAnnotations {
		if pvc.GetAnnotations()[k] != v {
			t.Errorf("claim annotation %s=%q, want %q: its records must never be pruned", k, pvc.GetAnnotations()[k], v)
		}
	}
	if size, _, _ := unstructured.NestedString(pvc.Object, "spec", "resources", "requests", "storage"); size != "5Gi" {
		t.Errorf("claim size %q", size)
	}
	if sc, _, _ := unstructured.NestedString(pvc.Object, "spec", "storageClassName"); sc != "retained" {
		t.Errorf("claim class %q", sc)
	}
	d := byKind[kindDeployment]
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 1 {
		t.Errorf("replicas %d, want one writer", r)
	}
	if s, _, _ := unstructured.NestedString(d.Object, "spec", "strategy", "type"); s != "Recreate" {
		t.Errorf("strategy %q, want Recreate (the claim is ReadWriteOnce)", s)
	}
	if g, _, _ := unstructured.NestedInt64(d.Object, "spec", "template", "spec", "securityContext", "fsGroup"); g != controllerUID {
		t.Errorf("fsGroup %d, want %d", g, controllerUID)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, want := range []string{"--ledger-file=" + LedgerMountPath + "/" + LedgerFile, "--ledger-key-file=" + LedgerKeyMountPath + "/" + LedgerKeyFile} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	volumes, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	var claim, key bool
	for _, v := range volumes {
		vm := v.(map[string]any)
		claim = claim || vm["persistentVolumeClaim"] != nil && vm["persistentVolumeClaim"].(map[string]any)["claimName"] == LedgerClaim
		key = key || vm["secret"] != nil && vm["secret"].(map[string]any)["secretName"] == LedgerKeySecret
	}
	if !claim || !key {
		t.Errorf("volumes %v: want the claim and the key Secret", volumes)
	}
	if pdb := byKind["PodDisruptionBudget"]; pdb != nil {
		if _, has, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "minAvailable"); has {
			t.Errorf("disruption budget %v keeps minAvailable: a drain of the one replica would block", pdb.Object["spec"])
		}
	}
	if _, err := Render(t.Context(), Options{Namespaces: []string{"team-a"}, WithDeployment: true, Replicas: 2, Ledger: &Ledger{}}); err == nil ||
		!strings.Contains(err.Error(), "one writer") {
		t.Errorf("two replicas with a ledger: %v, want a refusal", err)
	}
	if plain, err := Render(t.Context(), Options{Namespaces: []string{"team-a"}, WithDeployment: true}); err != nil {
		t.Fatal(err)
	} else {
		for _, o := range plain.Controller {
			if o.GetKind() == "PersistentVolumeClaim" {
				t.Error("a claim without Options.Ledger")
			}
		}
	}
}

// TestApplyCreatesTheLedgerKey: Apply creates the signing key once (kept
// when applied again) and publishes its public key; records signed with
// the Secret's key verify with the ConfigMap's.
func TestApplyCreatesTheLedgerKey(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	opts := Options{ControllerNamespace: "cd", Namespaces: []string{"shop"}, WithDeployment: true, Replicas: 1, Ledger: &Ledger{}}
	var keys [][]byte
	for range 2 {
		if err := Apply(ctx, c.Config, opts); err != nil {
			t.Fatal(err)
		}
		s, err := cs.CoreV1().Secrets("cd").Get(ctx, LedgerKeySecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, s.Data[LedgerKeyFile])
	}
	if !bytes.Equal(keys[0], keys[1]) {
		t.Fatal("applying again replaced the ledger's signing key")
	}
	key, err := ledger.ParsePrivateKey(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps("cd").Get(ctx, LedgerPublicKeyConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(cm.Data[LedgerPublicKeyFile]))
	if block == nil {
		t.Fatalf("public key %q is not PEM", cm.Data[LedgerPublicKeyFile])
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ledger.NewWriter(&buf, key, nil).Append(ledger.Record{Kind: ledger.KindSync, Namespace: "shop", App: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, n, err := ledger.Verify(&buf, pub.(ed25519.PublicKey)); err != nil || n != 1 {
		t.Errorf("a record signed with the Secret's key, verified with the ConfigMap's: %d, %v", n, err)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("cd").Get(ctx, LedgerClaim, metav1.GetOptions{}); err != nil {
		t.Errorf("the ledger's claim: %v", err)
	}
}
