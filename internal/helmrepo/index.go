package helmrepo

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// indexEntry is one repository's index as seen with one credential. What
// is kept in memory is small: the versions (version, digest, URLs) of the
// charts asked for since the last download. The whole index is parsed once
// per download (with Helm's own loader) into a compact table on disk,
// index/<key>.json, from which a chart not yet asked for is read.
type indexEntry struct {
	// file is the compact table's path (fixed per entry).
	file string

	mu                 sync.Mutex
	fetched            bool
	fetchedAt          int64 // Unix nanoseconds of the last download or revalidation
	etag, lastModified string
	charts             map[string][]tableVersion
	// downloads counts full downloads (tests, metrics).
	downloads int
}

// tableVersion is what keyless keeps of an index entry.
type tableVersion struct {
	Version string   `json:"v"`
	Digest  string   `json:"d,omitempty"`
	URLs    []string `json:"u,omitempty"`
}

// maxAskedCharts bounds the charts an indexEntry keeps in memory; past it
// the map starts again (they are read from the table on disk).
const maxAskedCharts = 256

// entry returns the index entry of (repoURL, creds), creating it.
func (f *Fetcher) entry(repoURL string, creds *Credentials) *indexEntry {
	fp := creds.fingerprint()
	f.mu.Lock()
	defer f.mu.Unlock()
	byCred := f.indexes[repoURL]
	if byCred == nil {
		byCred = map[string]*indexEntry{}
		f.indexes[repoURL] = byCred
	}
	e := byCred[fp]
	if e == nil {
		sum := sha256.Sum256([]byte(repoURL + "\x00" + fp))
		e = &indexEntry{file: filepath.Join(f.opts.CacheDir, indexDir, hex.EncodeToString(sum[:])+".json")}
		byCred[fp] = e
	}
	return e
}

// Invalidate drops what is known of repoURL's index (every credential):
// the next Resolve revalidates it (a webhook, or the controller's
// interval).
func (f *Fetcher) Invalidate(repoURL string) {
	f.mu.Lock()
	byCred := f.indexes[repoURL]
	f.mu.Unlock()
	for _, e := range byCred {
		e.mu.Lock()
		e.fetched = false
		e.mu.Unlock()
	}
}

func (e *indexEntry) fresh(now int64, ttl int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fetched && now-e.fetchedAt < ttl
}

// index returns repoURL's index entry, downloaded or revalidated when older
// than IndexTTL. Concurrent callers of one (repository, credential) share
// one download; it is not cancelled when one of them gives up.
func (f *Fetcher) index(ctx context.Context, repoURL string, creds *Credentials) (*indexEntry, error) {
	e := f.entry(repoURL, creds)
	ttl := int64(f.opts.IndexTTL)
	if e.fresh(f.now().UnixNano(), ttl) {
		return e, nil
	}
	ch := f.flight.DoChan(e.file, func() (any, error) {
		if e.fresh(f.now().UnixNano(), ttl) {
			return nil, nil
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.opts.Timeout)
		defer cancel()
		return nil, f.refresh(dctx, e, repoURL, creds)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("index of %s: %w", redact(repoURL), ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return e, nil
	}
}

// indexURL is where a Helm repository's index is.
func indexURL(repoURL string) string {
	return strings.TrimSuffix(repoURL, "/") + "/index.yaml"
}

// refresh downloads (or revalidates) the index into e.
func (f *Fetcher) refresh(ctx context.Context, e *indexEntry, repoURL string, creds *Credentials) error {
	u := indexURL(repoURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("index of %s: %w", redact(repoURL), err)
	}
	authorize(req, creds)
	e.mu.Lock()
	if _, statErr := os.Stat(e.file); statErr == nil {
		if e.etag != "" {
			req.Header.Set("If-None-Match", e.etag)
		}
		if e.lastModified != "" {
			req.Header.Set("If-Modified-Since", e.lastModified)
		}
	}
	e.mu.Unlock()
	resp, err := f.client(creds).Do(req)
	if err != nil {
		return fmt.Errorf("downloading the index of %s: %w", redact(repoURL), err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusNotModified {
		e.mu.Lock()
		e.fetched, e.fetchedAt = true, f.now().UnixNano()
		e.mu.Unlock()
		return nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("downloading the index of %s: %w", redact(repoURL), &StatusError{URL: redact(u), Code: resp.StatusCode})
	}
	table, err := f.parseIndex(repoURL, resp)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(e.file, table); err != nil {
		return fmt.Errorf("index of %s: caching: %w", redact(repoURL), err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fetched, e.fetchedAt = true, f.now().UnixNano()
	e.etag, e.lastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	e.charts = map[string][]tableVersion{}
	e.downloads++
	return nil
}

// parseIndex reads a bounded index.yaml (to a temporary file: Helm's
// loader reads a path) and returns its compact table as JSON.
func (f *Fetcher) parseIndex(repoURL string, resp *http.Response) ([]byte, error) {
	limit := f.opts.Limits.MaxIndexBytes
	tooBig := &LimitError{Limit: "MaxIndexBytes", Where: redact(indexURL(repoURL)), Detail: fmt.Sprintf("the index is larger than %d bytes", limit)}
	if resp.ContentLength > limit {
		return nil, tooBig
	}
	tmp, err := os.CreateTemp(filepath.Join(f.opts.CacheDir, indexDir), "download-*.yaml")
	if err != nil {
		return nil, fmt.Errorf("index of %s: %w", redact(repoURL), err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, limit+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("downloading the index of %s: %w", redact(repoURL), err)
	}
	if n > limit {
		return nil, tooBig
	}
	idx, err := repo.LoadIndexFile(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("the index of %s is not a Helm repository index: %w", redact(repoURL), err)
	}
	table := make(map[string][]tableVersion, len(idx.Entries))
	for name, cvs := range idx.Entries {
		vs := make([]tableVersion, 0, len(cvs))
		for _, cv := range cvs {
			vs = append(vs, tableVersion{Version: cv.Version, Digest: cv.Digest, URLs: cv.URLs})
		}
		table[name] = vs
	}
	return json.Marshal(table)
}

// versions returns the versions of chart in e (newest first, as Helm
// sorts them), from memory or the table on disk.
func (e *indexEntry) versions(chart string) ([]tableVersion, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if vs, ok := e.charts[chart]; ok {
		return vs, nil
	}
	fh, err := os.Open(e.file)
	if err != nil {
		return nil, err
	}
	defer func() { _ = fh.Close() }()
	vs, err := lookupTable(bufio.NewReader(fh), chart)
	if err != nil {
		return nil, fmt.Errorf("reading the cached index table %s: %w", e.file, err)
	}
	if e.charts == nil || len(e.charts) >= maxAskedCharts {
		e.charts = map[string][]tableVersion{}
	}
	e.charts[chart] = vs // nil: not in the index, remembered too
	return vs, nil
}

// lookupTable decodes only chart's versions from a compact table (a JSON
// object chart name → versions), skipping the others value by value.
func lookupTable(r io.Reader, chart string) ([]tableVersion, error) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("a key is not a string")
		}
		if name != chart {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			continue
		}
		var vs []tableVersion
		if err := dec.Decode(&vs); err != nil {
			return nil, err
		}
		return vs, nil
	}
	return nil, nil
}

// writeFileAtomic writes data to path (0600) through a temporary file in
// its folder.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
