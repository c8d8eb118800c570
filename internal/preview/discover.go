package preview

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/argocd"
	"github.com/keyless-cd/keyless/internal/render"
)

// Limits of the search for Application manifests in a checkout.
const (
	// maxManifestBytes: larger files are not read (an Application manifest
	// is a few hundred bytes; Argo CD's converter takes at most this).
	maxManifestBytes = argocd.MaxInput
	// maxDocuments bounds the objects decoded from one file.
	maxDocuments = 1000
)

// argoCDAPIVersion is the apiVersion of Argo CD's Application.
const argoCDAPIVersion = "argoproj.io/v1alpha1"

// found is an Application manifest at one revision.
type found struct {
	app    *kv1.Application
	source string                     // file:line
	object *unstructured.Unstructured // as written, for the manifest's own diff
}

// findApplications returns the Applications of the checkout dir by
// namespace/name: those in files when given (a file missing at this
// revision holds none), else those of every YAML or JSON file outside hidden
// folders. Files are read through an os.Root: nothing outside dir is read.
func findApplications(dir string, files []string) (map[string]*found, []string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = root.Close() }()
	apps := map[string]*found{}
	var warnings []string
	add := func(name string, data []byte, explicit bool) error {
		list, warns, err := decodeApplications(name, data)
		warnings = append(warnings, warns...)
		if err != nil {
			if explicit {
				return err
			}
			return nil // a template or a file that is not a manifest
		}
		if explicit && len(list) == 0 {
			return fmt.Errorf("%s holds no Application (apiVersion %s or %s)", name, kv1.GroupVersion, argoCDAPIVersion)
		}
		for _, f := range list {
			key := f.app.Namespace + "/" + f.app.Name
			if prev, dup := apps[key]; dup {
				warnings = append(warnings, fmt.Sprintf("%s: Application %s is also defined at %s; previewing the first", f.source, key, prev.source))
				continue
			}
			apps[key] = f
		}
		return nil
	}
	if len(files) > 0 {
		for _, name := range files {
			data, err := readBounded(root, name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			if err := add(name, data, true); err != nil {
				return nil, nil, err
			}
		}
		return apps, warnings, nil
	}
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !isManifestName(name) {
			return nil
		}
		data, err := readBounded(root, name)
		if err != nil || !bytes.Contains(data, []byte("Application")) {
			return nil //nolint:nilerr // too large or unreadable: not an Application manifest
		}
		return add(name, data, false)
	})
	return apps, warnings, err
}

func isManifestName(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// readBounded reads name inside root, refusing files over maxManifestBytes.
func readBounded(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxManifestBytes)
	}
	return data, nil
}

// decodeApplications returns the keyless and Argo CD Applications among the
// documents of file. An Application keyless cannot preview (no namespace,
// an Argo CD field keyless refuses) is a warning naming file:line.
func decodeApplications(file string, data []byte) ([]*found, []string, error) {
	objs, sources, err := render.DecodeManifests(file, data, maxDocuments)
	if err != nil {
		return nil, nil, err
	}
	var out []*found
	var warnings []string
	for i, o := range objs {
		if o.GetKind() != "Application" {
			continue
		}
		var app *kv1.Application
		switch o.GetAPIVersion() {
		case kv1.GroupVersion.String():
			app, err = keylessApplication(o)
		case argoCDAPIVersion:
			app, err = argoCDApplication(o)
		default:
			continue
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: Application %s not previewed: %v", sources[i], o.GetName(), err))
			continue
		}
		out = append(out, &found{app: app, source: sources[i], object: o})
	}
	return out, warnings, nil
}

func keylessApplication(o *unstructured.Unstructured) (*kv1.Application, error) {
	app := &kv1.Application{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, app); err != nil {
		return nil, err
	}
	if app.Namespace == "" && app.Spec.Destination != nil {
		app.Namespace = app.Spec.Destination.Namespace
	}
	if app.Name == "" {
		return nil, errors.New("metadata.name is missing")
	}
	if app.Namespace == "" {
		return nil, errors.New("metadata.namespace is missing: the namespace decides what the Application renders (Helm's .Release.Namespace)")
	}
	return app, nil
}

func argoCDApplication(o *unstructured.Unstructured) (*kv1.Application, error) {
	js, err := json.Marshal(o.Object)
	if err != nil {
		return nil, err
	}
	res, err := argocd.Convert(js)
	if err != nil {
		return nil, err
	}
	return res.Application, nil
}
