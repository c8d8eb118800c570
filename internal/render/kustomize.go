package render

import (
	"context"
	"fmt"
	"io"

	"github.com/keyless-cd/keyless/internal/confine"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	securefs "github.com/fluxcd/pkg/kustomize/filesys"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// renderKustomize builds the kustomization in dir in-process (krusty), through
// Flux's secure filesystem: nothing outside root is read, plugins are off,
// and remote bases are refused unless opts.AllowRemoteBases.
func renderKustomize(ctx context.Context, root, dir string, opts Options, dec *decrypter) ([]sourced, error) {
	rel := confine.Rel(root, dir)
	if !opts.AllowRemoteBases {
		if err := checkKustomizationsOffline(root, dir, opts.Limits); err != nil {
			return nil, err
		}
	}
	var fs filesys.FileSystem
	var err error
	if opts.AllowRemoteBases {
		fs, err = securefs.MakeFsOnDiskSecureBuild(root)
	} else {
		fs, err = securefs.MakeFsOnDiskSecure(root)
	}
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", rel, err)
	}
	lfs := &limitedFS{FileSystem: recordingFS{fs}, root: root, max: opts.Limits.MaxFileBytes, dec: dec}
	// helmCharts are inflated in-process before kustomize runs
	// (kustomize_helm.go): kustomize sees their objects, never helmCharts.
	withCharts, err := inflateHelmCharts(ctx, root, dir, opts, dec, lfs)
	if err != nil {
		return nil, err
	}
	resMap, err := fluxkustomize.Build(withCharts, dir)
	if err != nil {
		if lfs.hit != nil {
			return nil, lfs.hit // kustomize flattens errors to text; keep the limit's (or decryption's) type
		}
		return nil, fmt.Errorf("kustomize build %s: %w", rel, err)
	}
	if resMap.Size() > opts.Limits.MaxObjects {
		return nil, tooManyObjects("kustomization "+rel, opts.Limits.MaxObjects)
	}
	out := make([]sourced, 0, resMap.Size())
	for _, r := range resMap.Resources() {
		// Through JSON, so numbers become int64/float64 as unstructured expects.
		js, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", rel, r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", rel, r.CurId(), objectError(err))
		}
		restoreGenerateName(u)
		out = append(out, sourced{obj: u, source: "kustomization " + rel})
	}
	return out, nil
}

// limitedFS refuses to read a file larger than max bytes (Limits.MaxFileBytes,
// as for plain directories) before reading it.
type limitedFS struct {
	filesys.FileSystem
	root string
	max  int64
	dec  *decrypter // decrypts SOPS files in memory as kustomize reads them
	hit  error      // the first limit hit or decryption error
}

// ReadFile reads path unless it is larger than the limit.
func (l *limitedFS) ReadFile(path string) ([]byte, error) {
	f, err := l.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > l.max {
		return nil, l.limit(fileTooLarge(confine.Rel(l.root, path), fi.Size(), l.max))
	}
	data, err := io.ReadAll(io.LimitReader(f, l.max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > l.max {
		return nil, l.limit(fileTooLarge(confine.Rel(l.root, path), 0, l.max))
	}
	// Every file kustomize reads comes through here: resources, patches and
	// generator sources (files:, envs:), so a SOPS file is decrypted in
	// memory before kustomize sees it, never written.
	data, err = l.dec.read(confine.Rel(l.root, path), data)
	if err != nil {
		return nil, l.limit(err)
	}
	return withGenerateNamesAsNames(path, data), nil
}

func (l *limitedFS) limit(err error) error {
	if l.hit == nil {
		l.hit = err
	}
	return err
}
