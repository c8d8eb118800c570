package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/helmrepo"
	"github.com/keyless-cd/keyless/internal/readset"
)

// chartSource is a chart in a Helm repository (https://…/index.yaml) or an
// OCI registry (oci://…), spec.source.chart at spec.source.targetRevision
// (a version or a semver range). Its revision is version@sha256:digest:
// pinned once resolved, a new version in range is a new revision.
type chartSource struct {
	r     *ApplicationReconciler
	src   kv1.ApplicationSource
	creds *helmrepo.Credentials
	// resolved is the last resolve's answer (its chart URL for a fetch).
	resolved helmrepo.Resolved
	// root is the fetched chart's folder (after fetch).
	root, path string
}

// openChart reads the chart source's credential: a Secret labelled
// keyless.dev/credential: helm (basic auth or token) or a
// kubernetes.io/dockerconfigjson Secret, bound to the repository's host.
func (r *ApplicationReconciler) openChart(ctx context.Context, app *kv1.Application, src kv1.ApplicationSource, field string) (openSource, error) {
	if r.charts == nil {
		return nil, errors.New("this controller fetches no charts")
	}
	c := &chartSource{r: r, src: src}
	if ref := src.SecretRef; ref != nil {
		s, err := credential.Get(ctx, r.apiReader, app.Namespace, ref.Name, credential.Helm, field+".secretRef", src.RepoURL, r.allowInsecureHTTP)
		if err != nil {
			return nil, err
		}
		if c.creds, err = helmrepo.CredentialsFromSecret(src.RepoURL, s); err != nil {
			return nil, fmt.Errorf("chart credential %s/%s: %w", app.Namespace, ref.Name, err)
		}
	}
	return c, nil
}

func (c *chartSource) reason() string { return ReasonChartFailed }

func (c *chartSource) ref(version string) helmrepo.ChartRef {
	return helmrepo.ChartRef{RepoURL: c.src.RepoURL, Chart: c.src.Chart, Version: version}
}

func (c *chartSource) resolve(ctx context.Context, _ time.Duration) (string, error) {
	// The index is shared by every Application of the repository and
	// revalidated once per interval (helmrepo.Options.IndexTTL).
	res, err := c.r.charts.Resolve(ctx, c.ref(c.src.TargetRevision), c.creds)
	if err != nil {
		return "", err
	}
	c.resolved = res
	return chartRevision(res), nil
}

// chartRevision is a resolved chart's revision: version@sha256:digest.
func chartRevision(res helmrepo.Resolved) string { return res.Version + "@" + res.Digest }

func (c *chartSource) fetch(ctx context.Context, revision string) (*provenance, error) {
	version, digest, ok := strings.Cut(revision, "@")
	if !ok {
		return nil, fmt.Errorf("revision %q is not a chart's version@digest", revision)
	}
	res := c.resolved
	if chartRevision(res) != revision {
		// Another revision than the last resolve's (a revert to the last
		// applied one): its version again, which must still have its digest.
		var err error
		if res, err = c.r.charts.Resolve(ctx, c.ref(version), c.creds); err != nil {
			return nil, err
		}
		if res.Digest != digest {
			return nil, &helmrepo.DigestError{What: fmt.Sprintf("chart %s %s", res.Chart, version), Want: digest, Got: res.Digest}
		}
	}
	archive, err := c.r.charts.Fetch(ctx, res, c.creds)
	if err != nil {
		return nil, err
	}
	if c.root, c.path, err = expandChart(filepath.Join(c.r.chartCacheDir, "expanded"), archive, digest); err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", res.Chart, version, err)
	}
	return &provenance{Message: fmt.Sprintf("chart %s %s (%s)", res.Chart, version, kv1.ShortSHA(revision))}, nil
}

func (c *chartSource) checkout(ctx context.Context, revision string) (*checkout, error) {
	if c.root == "" {
		if _, err := c.fetch(ctx, revision); err != nil {
			return nil, err
		}
	}
	return &checkout{Root: c.root, Path: c.path, Release: func() {}}, nil
}

// expandChart unpacks a verified chart archive once per digest under dir
// (Helm's own expander: paths confined, sizes bounded by the archive check
// of helmrepo and Helm's loader) and returns the folder and the chart's
// folder name inside it. The files are made read-only.
func expandChart(dir, archive, digest string) (string, string, error) {
	hex, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || hex == "" || strings.ContainsAny(hex, `/\.`) {
		return "", "", fmt.Errorf("digest %q is not sha256:hex", digest)
	}
	root := filepath.Join(dir, hex)
	if name, err := onlyFolder(root); err == nil {
		now := time.Now()
		_ = os.Chtimes(root, now, now) // in use: retainCharts keeps it
		return root, name, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(dir, ".expand-")
	if err != nil {
		return "", "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	if err := chartutil.ExpandFile(tmp, archive); err != nil {
		return "", "", fmt.Errorf("unpacking: %w", err)
	}
	if _, err := onlyFolder(tmp); err != nil {
		return "", "", err
	}
	if err := readOnly(tmp); err != nil {
		return "", "", err
	}
	if err := os.Rename(tmp, root); err != nil && !errors.Is(err, os.ErrExist) {
		// Another reconcile unpacked the same digest first: use its copy.
		if name, err2 := onlyFolder(root); err2 == nil {
			return root, name, nil
		}
		return "", "", err
	}
	name, err := onlyFolder(root)
	return root, name, err
}

// onlyFolder is the name of the one folder in dir (an unpacked chart).
func onlyFolder(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	if len(entries) != 1 || !entries[0].IsDir() {
		return "", fmt.Errorf("an unpacked chart holds %d entries, want its one folder", len(entries))
	}
	return entries[0].Name(), nil
}

// readOnly makes the files below dir read-only.
func readOnly(dir string) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(path, 0o400)
	})
}

// retainCharts deletes the unpacked charts under dir whose digest is not in
// keep and that were not used within maxAge; it returns how many.
func retainCharts(dir string, keep map[string]bool, maxAge time.Duration) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !e.IsDir() || keep["sha256:"+e.Name()] || time.Since(info.ModTime()) < maxAge {
			continue
		}
		if err := removeReadOnly(filepath.Join(dir, e.Name())); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

// removeReadOnly deletes an unpacked chart whose files readOnly made
// read-only.
func removeReadOnly(dir string) error {
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// chartDigests are the chart digests app's revisions name (applied,
// attempted, in sync): what the chart cache keeps.
func chartDigests(app *kv1.Application, into map[string]bool) {
	for _, rev := range []string{app.Status.LastAppliedRevision, app.Status.LastAttemptedRevision, app.Status.Sync.Revision} {
		primary, _, _ := strings.Cut(rev, ",")
		if _, digest, ok := strings.Cut(primary, "@"); ok {
			into[digest] = true
		}
	}
}

func (*chartSource) inputValues(string, []readset.Input) ([]string, error) {
	return nil, fmt.Errorf("a chart is keyed by its version: %w", readset.ErrNotKeyable)
}

func (*chartSource) inputValuesOf(string, map[string][]readset.Input) (map[string][]string, error) {
	return nil, fmt.Errorf("a chart is keyed by its version: %w", readset.ErrNotKeyable)
}
