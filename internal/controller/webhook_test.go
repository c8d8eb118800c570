package controller

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/webhook"
)

func TestWebhookListenerServesTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyless-webhook"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &webhookRunnable{listener: l, h: &webhook.Receiver{}, certFile: certFile, keyFile: keyFile}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- w.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("listener: %v", err)
		}
	}()
	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: 10 * time.Second}
	resp, err := c.Post("https://"+l.Addr().String()+"/hooks/unknown", "application/json", nil)
	if err != nil {
		t.Fatalf("HTTPS request: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404 over TLS", resp.StatusCode)
	}
	if resp.TLS == nil {
		t.Fatal("the answer did not come over TLS")
	}
}

// listThenCancel lists through the real API server, then ends the webhook
// request (its context), as a forge that gave up waiting would.
type listThenCancel struct {
	client.Reader
	cancel context.CancelFunc
}

func (l listThenCancel) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	defer l.cancel()
	return l.Reader.List(ctx, list, opts...)
}

// TestWebhookTriggerEndsWithItsRequest: with the trigger queue full, a push
// for several Applications returns when its request ends instead of
// waiting for room for each of them (which held the request, and a slot of
// the receiver's MaxConcurrent, webhookQueueWait per Application).
func TestWebhookTriggerEndsWithItsRequest(t *testing.T) {
	const ns, repoURL = "team-a", "https://git.example/team-a/web.git"
	c := clustertest.Start(t, localcluster.Options{})
	if err := install.Apply(t.Context(), c.Config, install.Options{Namespaces: []string{ns}}); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = kv1.AddToScheme(scheme)
	admin, err := client.New(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "api", "worker"} {
		app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: repoURL, TargetRevision: "main", Path: name}}}
		if err := admin.Create(t.Context(), app); err != nil {
			t.Fatal(err)
		}
	}
	src, err := gitsource.New(gitsource.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	full := make(chan event.GenericEvent) // nobody receives: no room
	targets := &webhookTargets{client: listThenCancel{Reader: admin, cancel: cancel}, source: src, queue: full}
	n, err := targets.trigger(ctx, webhook.PushEvent{IsPush: true, Ref: "refs/heads/main", RepoURLs: []string{repoURL}}, ns)
	if n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("trigger with a full queue and its request ended: %d, %v; want 0 and context.Canceled", n, err)
	}
}
