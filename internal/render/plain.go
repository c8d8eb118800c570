package render

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/keyless-cd/keyless/internal/confine"
)

// manifestExts are the file endings read from a plain directory.
var manifestExts = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// renderPlain reads every *.yaml, *.yml and *.json file below dir (recursive,
// hidden folders and files skipped, sorted by path), confined to root.
func renderPlain(root, dir string, lim Limits, dec *decrypter) ([]sourced, []unrenderedFile, error) {
	var files []string
	var unrendered []unrenderedFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading %s: %w", confine.Rel(root, path), err)
		}
		name := d.Name()
		if path != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !manifestExts[strings.ToLower(filepath.Ext(name))] {
			if d.Type()&fs.ModeSymlink != 0 {
				// A symlink to a directory is not followed; one that leaves the root is an error.
				if _, err := confine.Join(root, filepath.Dir(path), name); err != nil {
					return err
				}
			}
			if !d.IsDir() && len(unrendered) < maxUnrenderedListed {
				unrendered = append(unrendered, unrenderedFile{path: confine.Rel(root, path), why: whyNotRendered(name)})
			}
			return nil
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(files)
	var out []sourced
	for _, path := range files {
		rel := confine.Rel(root, path)
		resolved, err := confine.Join(root, filepath.Dir(path), filepath.Base(path))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", rel, err)
		}
		data, err := readLimited(resolved, rel, lim.MaxFileBytes)
		if err != nil {
			return nil, nil, err
		}
		if data, err = dec.read(rel, data); err != nil {
			return nil, nil, err
		}
		objs, err := decodeObjects(rel, data, lim.MaxObjects-len(out))
		if err != nil {
			return nil, nil, err
		}
		out = append(out, objs...)
	}
	return out, unrendered, nil
}

// ErrNothingRendered is returned when a plain directory holds manifests only
// in formats keyless does not render (Jsonnet, CUE, templates).
var ErrNothingRendered = errors.New("nothing rendered")

// maxUnrenderedListed bounds how many unrendered files are named.
const maxUnrenderedListed = 20

// unrenderedFile is a file of a plain directory that was not rendered.
type unrenderedFile struct {
	path, why string
}

// otherFormatReasons are the file endings of manifests in formats keyless
// does not render, and what to do instead.
var otherFormatReasons = map[string]string{
	".jsonnet":   "Jsonnet is not rendered; commit its output as YAML",
	".libsonnet": "Jsonnet is not rendered; commit its output as YAML",
	".cue":       "CUE is not rendered; commit its output as YAML",
	".tpl":       "templates are rendered only inside a Helm chart (Chart.yaml)",
	".tmpl":      "templates are rendered only inside a Helm chart (Chart.yaml)",
	".j2":        "Jinja templates are not rendered; commit their output as YAML",
}

func whyNotRendered(name string) string {
	if why, ok := otherFormatReasons[strings.ToLower(filepath.Ext(name))]; ok {
		return why
	}
	return "not a *.yaml, *.yml or *.json file"
}

func otherFormats(files []unrenderedFile) []unrenderedFile {
	var out []unrenderedFile
	for _, f := range files {
		if _, ok := otherFormatReasons[strings.ToLower(filepath.Ext(f.path))]; ok {
			out = append(out, f)
		}
	}
	return out
}

func describeUnrendered(files []unrenderedFile) string {
	parts := make([]string, len(files))
	for i, f := range files {
		parts[i] = f.path + " (" + f.why + ")"
	}
	return strings.Join(parts, ", ")
}

func displayDir(p string) string {
	if p == "" || p == "." {
		return "the directory"
	}
	return p
}

// readLimited reads a file, refusing files larger than max bytes before
// reading them (and files that grow past max while being read).
func readLimited(path, name string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if fi.Size() > limit {
		return nil, fileTooLarge(name, fi.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fileTooLarge(name, 0, limit)
	}
	return data, nil
}
