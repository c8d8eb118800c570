package helmrepo

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func basicCreds(r *helmRepo) *Credentials {
	return &Credentials{Username: r.user, Password: r.pass, Hosts: []string{r.host()}}
}

func TestResolveAndFetchFromHelmRepository(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "anonymous", true: "basic auth"}[auth], func(t *testing.T) {
			user, pass := "", ""
			if auth {
				user, pass = "reader", "s3cret"
			}
			r := newHelmRepo(t, user, pass)
			r.add("lib", "0.1.0", "0.2.0", "1.0.0", "1.1.0-rc.1")
			r.index("")
			var creds *Credentials
			if auth {
				creds = basicCreds(r)
			}
			f := newTestFetcher(t, Options{}, r.srv.Certificate())
			for _, tc := range []struct{ ask, want string }{
				{"0.2.0", "0.2.0"}, {">=0.1.0 <1.0.0", "0.2.0"}, {"~0.1", "0.1.0"}, {"", "1.0.0"}, {"^1.0.0-0", "1.1.0-rc.1"},
			} {
				res, err := f.Resolve(t.Context(), ChartRef{RepoURL: r.srv.URL, Chart: "lib", Version: tc.ask}, creds)
				if err != nil {
					t.Fatalf("Resolve %q: %v", tc.ask, err)
				}
				archive := filepath.Join(r.dir, "lib-"+tc.want+".tgz")
				if res.Version != tc.want || res.Digest != fileDigest(t, archive) || res.URL != r.srv.URL+"/lib-"+tc.want+".tgz" {
					t.Errorf("Resolve %q = %+v, want version %s, digest %s", tc.ask, res, tc.want, fileDigest(t, archive))
				}
			}
			res, err := f.Resolve(t.Context(), ChartRef{RepoURL: r.srv.URL, Chart: "lib", Version: "0.2.0"}, creds)
			if err != nil {
				t.Fatal(err)
			}
			path, err := f.Fetch(t.Context(), res, creds)
			if err != nil {
				t.Fatal(err)
			}
			if fileDigest(t, path) != res.Digest {
				t.Errorf("cached archive digest %s, want %s", fileDigest(t, path), res.Digest)
			}
			if !strings.HasPrefix(path, f.opts.CacheDir+string(filepath.Separator)) {
				t.Errorf("archive %s outside the cache %s", path, f.opts.CacheDir)
			}
			assertMode(t, path, 0o600)
			assertMode(t, filepath.Dir(path), 0o700)
			assertMode(t, f.opts.CacheDir, 0o700)
			// A second Fetch is served from the cache.
			before := r.count("/lib-0.2.0.tgz")
			if _, err := f.Fetch(t.Context(), res, creds); err != nil {
				t.Fatal(err)
			}
			if got := r.count("/lib-0.2.0.tgz"); got != before {
				t.Errorf("a cached chart was downloaded again (%d → %d requests)", before, got)
			}
			if r.count("/index.yaml") != 1 {
				t.Errorf("index downloaded %d times for 6 Resolve calls, want 1", r.count("/index.yaml"))
			}
			_, err = f.Resolve(t.Context(), ChartRef{RepoURL: r.srv.URL, Chart: "lib", Version: "9.9.9"}, creds)
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "lib 9.9.9") {
				t.Errorf("a missing version: %v", err)
			}
			_, err = f.Resolve(t.Context(), ChartRef{RepoURL: r.srv.URL, Chart: "nope"}, creds)
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("a missing chart: %v", err)
			}
			if auth {
				other := newTestFetcher(t, Options{}, r.srv.Certificate())
				_, err := other.Resolve(t.Context(), ChartRef{RepoURL: r.srv.URL, Chart: "lib"}, nil)
				var se *StatusError
				if !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
					t.Errorf("without credentials: %v, want HTTP 401", err)
				}
			}
		})
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %o, want %o", path, fi.Mode().Perm(), want)
	}
}

func TestNewVersionInRangeAfterTTLAndInvalidate(t *testing.T) {
	r := newHelmRepo(t, "", "")
	r.add("lib", "0.1.0")
	r.index("")
	f := newTestFetcher(t, Options{IndexTTL: time.Minute}, r.srv.Certificate())
	now := time.Now()
	f.now = func() time.Time { return now }
	ref := ChartRef{RepoURL: r.srv.URL, Chart: "lib", Version: "~0.1"}
	resolve := func() string {
		t.Helper()
		res, err := f.Resolve(t.Context(), ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Version
	}
	if v := resolve(); v != "0.1.0" {
		t.Fatalf("resolved %s", v)
	}
	r.add("lib", "0.1.1")
	r.index("")
	if v := resolve(); v != "0.1.0" {
		t.Errorf("within the TTL: resolved %s, want the cached 0.1.0", v)
	}
	now = now.Add(time.Minute)
	if v := resolve(); v != "0.1.1" {
		t.Errorf("after the TTL: resolved %s, want 0.1.1", v)
	}
	// Unchanged after another TTL: revalidated (304), not downloaded.
	now = now.Add(time.Minute)
	if v := resolve(); v != "0.1.1" {
		t.Errorf("revalidated: resolved %s", v)
	}
	if r.notMod != 1 {
		t.Errorf("%d answers 304 Not Modified, want 1 (If-Modified-Since)", r.notMod)
	}
	r.add("lib", "0.1.2")
	r.index("")
	f.Invalidate(r.srv.URL)
	if v := resolve(); v != "0.1.2" {
		t.Errorf("after Invalidate: resolved %s, want 0.1.2", v)
	}
	if got := r.count("/index.yaml"); got != 4 {
		t.Errorf("index requested %d times, want 4", got)
	}
}

func TestConcurrentResolvesDownloadTheIndexOnce(t *testing.T) {
	r := newHelmRepo(t, "", "")
	r.add("lib", "0.1.0", "0.2.0")
	r.index("")
	r.indexDelay = 300 * time.Millisecond
	f := newTestFetcher(t, Options{}, r.srv.Certificate())
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := f.Resolve(t.Context(), ChartRef{RepoURL: r.srv.URL, Chart: "lib", Version: "^0.1"}, nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := r.count("/index.yaml"); got != 1 {
		t.Errorf("20 concurrent Resolve calls downloaded the index %d times, want 1", got)
	}
}

func TestTamperedChartIsRefusedNamingBothDigests(t *testing.T) {
	r := newHelmRepo(t, "", "")
	r.add("lib", "0.1.0", "0.2.0")
	r.index("")
	// The server now serves 0.2.0's bytes as 0.1.0.
	data, err := os.ReadFile(filepath.Join(r.dir, "lib-0.2.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	want := fileDigest(t, filepath.Join(r.dir, "lib-0.1.0.tgz"))
	writeFile(t, filepath.Join(r.dir, "lib-0.1.0.tgz"), data)
	f := newTestFetcher(t, Options{}, r.srv.Certificate())
	res, err := f.Resolve(t.Context(), ChartRef{RepoURL: r.srv.URL, Chart: "lib", Version: "0.1.0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Fetch(t.Context(), res, nil)
	var de *DigestError
	if !errors.As(err, &de) || !errors.Is(err, ErrDigest) {
		t.Fatalf("Fetch of a tampered chart: %v, want a *DigestError", err)
	}
	got := fileDigest(t, filepath.Join(r.dir, "lib-0.2.0.tgz"))
	if de.Want != want || de.Got != got || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), got) {
		t.Errorf("error %q: want both %s (index) and %s (downloaded)", err, want, got)
	}
	entries, _ := os.ReadDir(filepath.Join(f.opts.CacheDir, chartsDir))
	if len(entries) != 0 {
		t.Errorf("the refused download left %d files in the cache", len(entries))
	}
}

func TestCredentialIsNeverSentToAnotherHost(t *testing.T) {
	charts := newHelmRepo(t, "", "") // host B: serves the archives, wants no credential
	charts.add("lib", "0.1.0", "0.2.0")
	index := newHelmRepo(t, "reader", "s3cret") // host A: the repository, with basic auth
	for _, n := range []string{"lib-0.1.0.tgz", "lib-0.2.0.tgz"} {
		data, err := os.ReadFile(filepath.Join(charts.dir, n))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(index.dir, n), data)
	}
	index.index(charts.srv.URL) // absolute chart URLs on host B
	f := newTestFetcher(t, Options{}, charts.srv.Certificate(), index.srv.Certificate())
	creds := basicCreds(index) // bound to A's host:port
	res, err := f.Resolve(t.Context(), ChartRef{RepoURL: index.srv.URL, Chart: "lib", Version: "0.1.0"}, creds)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.URL, charts.srv.URL) {
		t.Fatalf("chart URL %s is not on the other host", res.URL)
	}
	if _, err := f.Fetch(t.Context(), res, creds); err != nil {
		t.Fatal(err)
	}
	// A redirect from A to B does not carry it either.
	index.mu.Lock()
	index.handler = func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, charts.srv.URL+req.URL.Path, http.StatusFound)
	}
	index.mu.Unlock()
	res2 := Resolved{RepoURL: index.srv.URL, Chart: "lib", Version: "0.2.0", Digest: fileDigest(t, filepath.Join(charts.dir, "lib-0.2.0.tgz")), URL: index.srv.URL + "/lib-0.2.0.tgz"}
	if _, err := f.Fetch(t.Context(), res2, creds); err != nil {
		t.Fatal(err)
	}
	for _, a := range charts.authorizations() {
		if a != "" {
			t.Errorf("host B received an Authorization header %q", a)
		}
	}
	if n := charts.count("/lib-0.1.0.tgz") + charts.count("/lib-0.2.0.tgz"); n != 2 {
		t.Errorf("host B served %d archives, want 2", n)
	}
	sent := 0
	for _, a := range index.authorizations() {
		if strings.HasPrefix(a, "Basic ") {
			sent++
		}
	}
	if sent == 0 {
		t.Error("host A never received the credential")
	}
}

func TestPlainHTTPRepositoryIsRefusedWithoutTheFlag(t *testing.T) {
	dir := t.TempDir()
	packageChart(t, "lib", "0.1.0", dir)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	r := &helmRepo{t: t, dir: dir}
	r.index("")
	ref := ChartRef{RepoURL: srv.URL, Chart: "lib", Version: "0.1.0"}
	f := newTestFetcher(t, Options{})
	if _, err := f.Resolve(t.Context(), ref, nil); !errors.Is(err, ErrInsecure) {
		t.Errorf("plain http:// without the flag: %v, want ErrInsecure", err)
	}
	// An https repository whose index points to plain http:// charts.
	tls := newHelmRepo(t, "", "")
	tls.add("lib", "0.1.0")
	tls.index(srv.URL)
	f = newTestFetcher(t, Options{}, tls.srv.Certificate())
	if _, err := f.Resolve(t.Context(), ChartRef{RepoURL: tls.srv.URL, Chart: "lib"}, nil); err != nil {
		if !errors.Is(err, ErrInsecure) {
			t.Errorf("an http:// chart URL: %v, want ErrInsecure", err)
		}
	} else {
		t.Error("an http:// chart URL was accepted without the flag")
	}
	insecure := newTestFetcher(t, Options{AllowInsecureHTTP: true})
	res, err := insecure.Resolve(t.Context(), ref, nil)
	if err != nil {
		t.Fatalf("with AllowInsecureHTTP: %v", err)
	}
	if _, err := insecure.Fetch(t.Context(), res, nil); err != nil {
		t.Fatalf("with AllowInsecureHTTP: %v", err)
	}
}

func TestOversizedIndexAndChartAreRefusedNamingTheLimit(t *testing.T) {
	r := newHelmRepo(t, "", "")
	r.add("lib", "0.1.0")
	r.index("")
	fi, err := os.Stat(filepath.Join(r.dir, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ref := ChartRef{RepoURL: r.srv.URL, Chart: "lib", Version: "0.1.0"}
	small := newTestFetcher(t, Options{Limits: Limits{MaxIndexBytes: fi.Size() - 1}}, r.srv.Certificate())
	_, err = small.Resolve(t.Context(), ref, nil)
	assertLimit(t, err, "MaxIndexBytes")

	archive := filepath.Join(r.dir, "lib-0.1.0.tgz")
	afi, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		limits Limits
		name   string
	}{
		{Limits{MaxChartBytes: afi.Size() - 1}, "MaxChartBytes"},
		{Limits{MaxChartUncompressedBytes: 100}, "MaxChartUncompressedBytes"},
		{Limits{MaxChartFiles: 2}, "MaxChartFiles"},
	} {
		f := newTestFetcher(t, Options{Limits: tc.limits}, r.srv.Certificate())
		res, err := f.Resolve(t.Context(), ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Fetch(t.Context(), res, nil)
		assertLimit(t, err, tc.name)
		entries, _ := os.ReadDir(filepath.Join(f.opts.CacheDir, chartsDir))
		if len(entries) != 0 {
			t.Errorf("%s: the refused download left %d files in the cache", tc.name, len(entries))
		}
	}
}

func assertLimit(t *testing.T, err error, limit string) {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrLimit) || le.Limit != limit || !strings.Contains(err.Error(), limit) {
		t.Errorf("err = %v, want a *LimitError naming %s", err, limit)
	}
}

func TestRedirectLoopIsBounded(t *testing.T) {
	r := newHelmRepo(t, "", "")
	r.handler = func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, "/index.yaml", http.StatusFound)
	}
	f := newTestFetcher(t, Options{Limits: Limits{MaxRedirects: 3}}, r.srv.Certificate())
	_, err := f.Resolve(t.Context(), ChartRef{RepoURL: r.srv.URL, Chart: "lib"}, nil)
	assertLimit(t, err, "MaxRedirects")
	if got := r.count("/index.yaml"); got != 4 {
		t.Errorf("%d requests for a redirect loop with MaxRedirects 3, want 4", got)
	}
}

func TestRepositoryNamesAreRefused(t *testing.T) {
	f := newTestFetcher(t, Options{})
	for _, u := range []string{"@stable", "alias:stable", "stable", "ftp://charts.example.com", "https://user:tok@charts.example.com"} {
		_, err := f.Resolve(t.Context(), ChartRef{RepoURL: u, Chart: "lib"}, nil)
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", u, err)
		}
		if strings.Contains(fmtErr(err), "tok@") {
			t.Errorf("%s: the error shows the token: %v", u, err)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
