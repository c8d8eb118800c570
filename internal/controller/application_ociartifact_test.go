package controller_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/ociartifact"
	"github.com/keyless-cd/keyless/internal/publish"
	"github.com/keyless-cd/keyless/internal/registrytest"
)

// artifactRegistry starts the real registry with a login and creates the
// namespace's credential for it (labelled helm, bound to its host).
func artifactRegistry(t *testing.T, e *env) (registrytest.Registry, publish.RegistryOptions) {
	t.Helper()
	reg := registrytest.StartWith(t, registrytest.Binary(t), registrytest.Options{Username: "ci", Password: "s3cret"})
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "registry-login", Namespace: appNS,
			Labels:      map[string]string{kv1.CredentialLabel: kv1.CredentialHelm},
			Annotations: map[string]string{kv1.GitHostAnnotation: reg.Host}},
		StringData: map[string]string{"username": "ci", "password": "s3cret"},
	}
	if err := e.admin.Create(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	return reg, publish.RegistryOptions{Username: "ci", Password: "s3cret", AllowInsecureHTTP: true, NoDockerConfig: true}
}

// publishConfigMap publishes a folder holding ConfigMap name with data v
// to ref (keyless publish), with a publisher's origin, and returns the
// digest.
func publishConfigMap(t *testing.T, reg publish.RegistryOptions, ref, name, v string) string {
	t.Helper()
	return publishCM(t, reg, ref, name, v, func(o *publish.Options) {
		o.Source, o.Revision, o.Pipeline = "https://git.example/team/app", "main@sha1:"+strings.Repeat(v[:1], 40), "https://git.example/team/app/-/jobs/"+v
	})
}

// publishCM publishes ConfigMap name=v to ref with the options edit makes
// (nil: none) and returns the digest.
func publishCM(t *testing.T, reg publish.RegistryOptions, ref, name, v string, edit func(*publish.Options)) string {
	t.Helper()
	dir := t.TempDir()
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  v: \"" + v + "\"\n"
	if err := os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte(cm), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := publish.ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	opts := publish.Options{Dir: dir, Ref: r, Registry: reg}
	if edit != nil {
		edit(&opts)
	}
	res, err := publish.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res.Digest
}

// artifactApp creates an Application deploying the artifact at repoURL,
// following target, polled every 5 s (the shortest interval).
func (e *env) artifactApp(name, repoURL, target string) {
	e.t.Helper()
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source:     kv1.ApplicationSource{RepoURL: repoURL, TargetRevision: target, SecretRef: &kv1.LocalObjectReference{Name: "registry-login"}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true}},
			Interval:   &metav1.Duration{Duration: 5 * time.Second},
		},
	}
	if err := e.admin.Create(e.t.Context(), app); err != nil {
		e.t.Fatal(err)
	}
}

// TestArtifactPublishSyncBump: keyless publish → the Application syncs the
// artifact (revision tag@digest, the publisher's source in history) →
// keyless bump --artifact moves the tag → it syncs the new digest; a
// tampered layer is refused naming its digest while the last good state
// keeps running; a layer with an escaping symlink is refused naming it.
func TestArtifactPublishSyncBump(t *testing.T) {
	e := newEnv(t)
	e.startController(time.Hour)
	reg, login := artifactRegistry(t, e)
	repoURL := "oci://" + reg.Host + "/team/app"
	d1 := publishConfigMap(t, login, repoURL+":build-1", "art", "1")
	from, _ := publish.ParseRef(repoURL + ":build-1")
	if _, err := publish.Promote(t.Context(), from, "stable", login); err != nil {
		t.Fatal(err)
	}
	e.artifactApp("art", repoURL, "stable")
	got := e.waitApp("art", "Ready at stable@"+d1, 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == "stable@"+d1
	})
	if e.configMapValue("art") != "1" {
		t.Fatalf("ConfigMap art: %q, want 1", e.configMapValue("art"))
	}
	if h := got.Status.History; len(h) == 0 || !strings.Contains(h[0].Message, "main@sha1:1111111") || !strings.Contains(h[0].Message, "jobs/1") {
		t.Errorf("history does not say where the artifact came from: %+v", h)
	}

	// Promote build 2 by moving the tag: no Git anywhere.
	d2 := publishConfigMap(t, login, repoURL+":build-2", "art", "2")
	from2, _ := publish.ParseRef(repoURL + ":build-2")
	p, err := publish.Promote(t.Context(), from2, "stable", login)
	if err != nil {
		t.Fatal(err)
	}
	if p.Previous != d1 || p.From.Digest != d2 {
		t.Errorf("promotion %+v, want %s → %s", p, d1, d2)
	}
	e.waitApp("art", "Ready at stable@"+d2, 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == "stable@"+d2
	})
	if e.configMapValue("art") != "2" {
		t.Fatalf("ConfigMap art: %q, want 2", e.configMapValue("art"))
	}

	// Build 3's layer is changed in the registry's storage.
	d3 := publishConfigMap(t, login, repoURL+":build-3", "art", "3")
	repo, err := login.Repository(publish.Ref{Repository: strings.TrimPrefix(repoURL, "oci://")})
	if err != nil {
		t.Fatal(err)
	}
	_, raw, err := fetchManifestRaw(t, repo, d3)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	layer := m.Layers[0].Digest.String()
	data, err := os.ReadFile(reg.BlobPath(layer))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-10] ^= 0xff
	if err := os.WriteFile(reg.BlobPath(layer), data, 0o600); err != nil {
		t.Fatal(err)
	}
	from3, _ := publish.ParseRef(repoURL + ":build-3")
	if _, err := publish.Promote(t.Context(), from3, "stable", login); err != nil {
		t.Fatal(err)
	}
	e.waitApp("art", "refusing the tampered layer", 60*time.Second, func(a *kv1.Application) bool {
		c := apimeta.FindStatusCondition(a.Status.Conditions, kv1.ReadyCondition)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == kv1.ReasonArtifactFailed && strings.Contains(c.Message, layer)
	})
	if v := e.configMapValue("art"); v != "2" || e.app("art").Status.LastAppliedRevision != "stable@"+d2 {
		t.Fatalf("after a refused artifact: ConfigMap %q at %s, want build 2 still running", v, e.app("art").Status.LastAppliedRevision)
	}

	// A layer with a symlink out of the folder.
	evil := rawLayer(t, []tar.Header{{Name: "cm.yaml", Typeflag: tar.TypeSymlink, Linkname: "../../../etc/passwd"}}, nil)
	if _, err := ociartifact.Push(t.Context(), repo, "stable", evil, nil); err != nil {
		t.Fatal(err)
	}
	e.waitApp("art", "refusing the escaping symlink", 60*time.Second, func(a *kv1.Application) bool {
		c := apimeta.FindStatusCondition(a.Status.Conditions, kv1.ReadyCondition)
		return c != nil && c.Reason == kv1.ReasonArtifactFailed && strings.Contains(c.Message, `entry "cm.yaml"`) && strings.Contains(c.Message, "leaves")
	})
	if v := e.configMapValue("art"); v != "2" {
		t.Fatalf("after a refused artifact: ConfigMap %q, want build 2 still running", v)
	}
}

// fetchManifestRaw reads the manifest of digest.
func fetchManifestRaw(t *testing.T, repo *remote.Repository, d string) (ocispec.Descriptor, []byte, error) {
	t.Helper()
	desc, rc, err := repo.FetchReference(t.Context(), d)
	if err != nil {
		return desc, nil, err
	}
	defer func() { _ = rc.Close() }()
	var b bytes.Buffer
	_, err = b.ReadFrom(rc)
	return desc, b.Bytes(), err
}

// rawLayer is a gzipped tar of hdrs with bodies (by name), written as
// fluxcd/pkg/tar does: the "." folder first, modes as given, times zero.
func rawLayer(t *testing.T, hdrs []tar.Header, bodies map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, h := range append([]tar.Header{{Name: ".", Typeflag: tar.TypeDir, Mode: 0o755}}, hdrs...) {
		h.Size = int64(len(bodies[h.Name]))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(bodies[h.Name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestArtifactPushedAsFluxDoes: an artifact made without keyless, exactly as
// `flux push artifact` makes one (fluxcd/pkg/oci: go-containerregistry's
// config blob, the content layer's media type, a "." entry and the file
// system's modes in the tar, the created/source/revision annotations),
// pushed with oras-go, syncs.
func TestArtifactPushedAsFluxDoes(t *testing.T) {
	e := newEnv(t)
	e.startController(time.Hour)
	reg, _ := artifactRegistry(t, e)
	repo, err := remote.NewRepository(reg.Host + "/flux/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	repo.Client = &auth.Client{Cache: auth.NewCache(), Credential: auth.StaticCredential(reg.Host, auth.Credential{Username: "ci", Password: "s3cret"})}

	layer := rawLayer(t, []tar.Header{
		{Name: "deploy", Typeflag: tar.TypeDir, Mode: 0o750},
		{Name: "deploy/cm.yaml", Typeflag: tar.TypeReg, Mode: 0o600},
	}, map[string]string{"deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fluxed\ndata:\n  v: flux\n"})
	config := []byte(`{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":null},"config":{}}`)
	configDesc := ocispec.Descriptor{MediaType: "application/vnd.cncf.flux.config.v1+json", Digest: digest.FromBytes(config), Size: int64(len(config))}
	layerDesc := ocispec.Descriptor{MediaType: "application/vnd.cncf.flux.content.v1.tar+gzip", Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	for _, b := range []struct {
		d    ocispec.Descriptor
		data []byte
	}{{configDesc, config}, {layerDesc, layer}} {
		if err := repo.Blobs().Push(t.Context(), b.d, bytes.NewReader(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: configDesc, Layers: []ocispec.Descriptor{layerDesc},
		Annotations: map[string]string{
			"org.opencontainers.image.created":  time.Now().UTC().Format(time.RFC3339),
			"org.opencontainers.image.source":   "https://github.com/team/app",
			"org.opencontainers.image.revision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	if err := repo.PushReference(t.Context(), mdesc, bytes.NewReader(manifest), "latest"); err != nil {
		t.Fatal(err)
	}

	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "fluxed", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source:     kv1.ApplicationSource{RepoURL: "oci://" + reg.Host + "/flux/app", Path: "deploy", SecretRef: &kv1.LocalObjectReference{Name: "registry-login"}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{}},
		},
	}
	if err := e.admin.Create(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	e.waitApp("fluxed", "Ready at latest@"+mdesc.Digest.String(), 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == "latest@"+mdesc.Digest.String()
	})
	if v := e.configMapValue("fluxed"); v != "flux" {
		t.Fatalf("ConfigMap fluxed: %q, want flux", v)
	}
}
