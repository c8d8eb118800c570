package helmrepo

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func registryCreds(reg *ociRegistry, hosts ...string) *Credentials {
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1"} // the registry and its token service (another port)
	}
	return &Credentials{Username: registryUser, Password: registryPass, Hosts: hosts}
}

func TestResolveAndFetchFromOCIRegistryWithTokenAuth(t *testing.T) {
	reg := startRegistry(t, false)
	pushed := map[string][]byte{}
	for _, v := range []string{"0.1.0", "0.2.0", "1.0.0+build.1"} {
		pushed[v] = reg.push(t, "lib", v)
	}
	f := newTestFetcher(t, Options{}, reg.trust()...)
	creds := registryCreds(reg)
	for _, tc := range []struct{ ask, want string }{
		{"0.1.0", "0.1.0"}, {"~0.1", "0.1.0"}, {">=0.1.0 <1.0.0", "0.2.0"}, {"", "1.0.0+build.1"}, {"1.0.0+build.1", "1.0.0+build.1"},
	} {
		res, err := f.Resolve(t.Context(), ChartRef{RepoURL: reg.url(), Chart: "lib", Version: tc.ask}, creds)
		if err != nil {
			t.Fatalf("Resolve %q: %v", tc.ask, err)
		}
		if res.Version != tc.want || !strings.HasPrefix(res.Digest, "sha256:") || res.URL != reg.url()+"/lib:"+ociTag(tc.want) {
			t.Errorf("Resolve %q = %+v, want %s", tc.ask, res, tc.want)
		}
		path, err := f.Fetch(t.Context(), res, creds)
		if err != nil {
			t.Fatalf("Fetch %s: %v", res.Version, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pushed[tc.want]) {
			t.Errorf("Fetch %s: the cached archive is not the chart pushed", res.Version)
		}
		assertMode(t, path, 0o600)
	}
	// Anonymous: the token service refuses, the registry answers 401.
	anon := newTestFetcher(t, Options{}, reg.trust()...)
	if _, err := anon.Resolve(t.Context(), ChartRef{RepoURL: reg.url(), Chart: "lib", Version: "~0.1"}, nil); err == nil {
		t.Error("an anonymous Resolve against a registry with token auth succeeded")
	}
	if _, err := f.Resolve(t.Context(), ChartRef{RepoURL: reg.url(), Chart: "lib", Version: "7.0.0"}, creds); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing tag: %v, want ErrNotFound", err)
	}
}

func TestOCICredentialGoesOnlyToItsHost(t *testing.T) {
	reg := startRegistry(t, false)
	reg.push(t, "lib", "0.1.0")
	// Bound to the registry's host:port only: its token service (another
	// port) must not receive it, so the registry cannot be read.
	f := newTestFetcher(t, Options{}, reg.trust()...)
	before := len(reg.token.authorizations())
	_, err := f.Resolve(t.Context(), ChartRef{RepoURL: reg.url(), Chart: "lib", Version: "0.1.0"}, registryCreds(reg, reg.host))
	if err == nil {
		t.Fatal("Resolve succeeded although the token service is not a bound host")
	}
	auths := reg.token.authorizations()[before:]
	if len(auths) == 0 {
		t.Fatal("the token service was never asked")
	}
	for _, a := range auths {
		if a != "" {
			t.Errorf("the token service (an unbound host) received an Authorization header %q", a)
		}
	}
}

func TestTamperedOCIChartIsRefusedNamingBothDigests(t *testing.T) {
	reg := startRegistry(t, false)
	data := reg.push(t, "lib", "0.1.0")
	layer := fmt.Sprintf("%x", sha256.Sum256(data))
	blob := filepath.Join(reg.storage, "docker", "registry", "v2", "blobs", "sha256", layer[:2], layer, "data")
	// Same size, one byte changed: what the registry's storage now serves
	// under the layer's digest.
	tampered := bytes.Clone(data)
	tampered[len(tampered)/2] ^= 0xff
	if err := os.WriteFile(blob, tampered, 0o600); err != nil {
		t.Fatalf("tampering with the registry's storage: %v", err)
	}
	f := newTestFetcher(t, Options{}, reg.trust()...)
	creds := registryCreds(reg)
	res, err := f.Resolve(t.Context(), ChartRef{RepoURL: reg.url(), Chart: "lib", Version: "0.1.0"}, creds)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Fetch(t.Context(), res, creds)
	var de *DigestError
	if !errors.As(err, &de) {
		t.Fatalf("Fetch of a tampered layer: %v, want a *DigestError", err)
	}
	got := fmt.Sprintf("sha256:%x", sha256.Sum256(tampered))
	want := "sha256:" + layer
	if de.Want != want || de.Got != got || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), got) {
		t.Errorf("error %q: want both %s (the layer's) and %s (served)", err, want, got)
	}
}

func TestPlainHTTPRegistryIsRefusedWithoutTheFlag(t *testing.T) {
	reg := startRegistry(t, true)
	data := reg.push(t, "lib", "0.1.0")
	ref := ChartRef{RepoURL: reg.url(), Chart: "lib", Version: "0.1.0"}
	if _, err := newTestFetcher(t, Options{}).Resolve(t.Context(), ref, nil); !errors.Is(err, ErrInsecure) {
		t.Errorf("a plain-HTTP registry without the flag: %v, want ErrInsecure", err)
	}
	f := newTestFetcher(t, Options{AllowInsecureHTTP: true})
	res, err := f.Resolve(t.Context(), ref, nil)
	if err != nil {
		t.Fatalf("with AllowInsecureHTTP: %v", err)
	}
	path, err := f.Fetch(t.Context(), res, nil)
	if err != nil {
		t.Fatalf("with AllowInsecureHTTP: %v", err)
	}
	if fileDigest(t, path) != fmt.Sprintf("sha256:%x", sha256.Sum256(data)) {
		t.Error("the archive fetched is not the chart pushed")
	}
}

func TestOversizedOCIChartIsRefusedNamingTheLimit(t *testing.T) {
	reg := startRegistry(t, false)
	data := reg.push(t, "lib", "0.1.0")
	f := newTestFetcher(t, Options{Limits: Limits{MaxChartBytes: int64(len(data)) - 1}}, reg.trust()...)
	creds := registryCreds(reg)
	res, err := f.Resolve(t.Context(), ChartRef{RepoURL: reg.url(), Chart: "lib", Version: "0.1.0"}, creds)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Fetch(t.Context(), res, creds)
	assertLimit(t, err, "MaxChartBytes")
	small := newTestFetcher(t, Options{Limits: Limits{MaxManifestBytes: 100}}, reg.trust()...)
	_, err = small.Fetch(t.Context(), res, creds)
	if !errors.Is(err, ErrLimit) {
		t.Errorf("a manifest over MaxManifestBytes: %v, want ErrLimit", err)
	}
}
