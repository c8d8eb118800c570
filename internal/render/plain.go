package render

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/readset"
)

// manifestExts are the file endings read from a plain directory, as Argo CD
// reads them (*.jsonnet evaluated, jsonnet.go).
var manifestExts = map[string]bool{".yaml": true, ".yml": true, ".json": true, jsonnetExt: true}

// renderPlain reads the *.yaml, *.yml, *.json and *.jsonnet files of dir as
// Argo CD's directory source does: the folder's own files, or every file
// below it with opts.Directory.Recurse; only those the include/exclude globs
// select; sorted by path. Hidden folders and files are skipped (where Argo
// CD reads them: keyless refuses a YAML file that is not a Kubernetes
// object, such as .sops.yaml, which Argo CD ignores). Everything is read
// confined to root.
func renderPlain(ctx context.Context, root, dir string, opts Options, dec *decrypter) ([]sourced, []unrenderedFile, []string, error) {
	filter, err := newFileFilter(opts.Directory)
	if err != nil {
		return nil, nil, nil, err
	}
	// The walk looks at every entry below dir (hidden files, subfolders
	// for the warnings, symlinks): the whole folder is an input.
	note(dir, readset.Tree)
	var files, skippedDirs []string
	var unrendered []unrenderedFile
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
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
		if d.IsDir() && path != dir && !opts.Directory.Recurse {
			if len(skippedDirs) < maxUnrenderedListed && holdsManifests(path) {
				skippedDirs = append(skippedDirs, confine.Rel(root, path))
			}
			return filepath.SkipDir
		}
		if d.IsDir() || !manifestExts[strings.ToLower(filepath.Ext(name))] {
			if d.Type()&fs.ModeSymlink != 0 {
				// A symlink to a directory is not followed; one that leaves the root is an error.
				if _, err := joinNoted(root, filepath.Dir(path), name); err != nil {
					return err
				}
			}
			if !d.IsDir() && len(unrendered) < maxUnrenderedListed {
				unrendered = append(unrendered, unrenderedFile{path: confine.Rel(root, path), why: whyNotRendered(name)})
			}
			return nil
		}
		if rel, err := filepath.Rel(dir, path); err == nil && !filter.selects(rel) {
			return nil
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	sort.Strings(files)
	var out []sourced
	for _, path := range files {
		rel := confine.Rel(root, path)
		resolved, err := joinNoted(root, filepath.Dir(path), filepath.Base(path))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", rel, err)
		}
		var objs []sourced
		if strings.EqualFold(filepath.Ext(path), jsonnetExt) {
			objs, err = renderJsonnet(ctx, root, dir, rel, opts, opts.Limits.MaxObjects-len(out))
		} else {
			objs, err = readManifests(resolved, rel, opts.Limits, dec, opts.Limits.MaxObjects-len(out))
		}
		if err != nil {
			return nil, nil, nil, err
		}
		out = append(out, objs...)
	}
	return out, unrendered, skippedDirs, nil
}

// readManifests reads one YAML or JSON file (decrypted when SOPS-encrypted).
func readManifests(path, rel string, lim Limits, dec *decrypter, left int) ([]sourced, error) {
	data, err := readLimited(path, rel, lim.MaxFileBytes)
	if err != nil {
		return nil, err
	}
	if data, err = dec.read(rel, data); err != nil {
		return nil, err
	}
	return decodeObjects(rel, data, left)
}

// maxManifestScan bounds how many entries holdsManifests looks at.
const maxManifestScan = 10000

// holdsManifests says whether the folder at path holds, at any depth, a
// file a plain render would read: a subfolder a render without recursion
// leaves out is worth a warning only then. Hidden entries and symlinks are
// not followed; at most maxManifestScan entries are looked at.
func holdsManifests(path string) bool {
	found, seen := false, 0
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		seen++
		if err != nil || seen > maxManifestScan {
			return filepath.SkipAll
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && manifestExts[strings.ToLower(filepath.Ext(d.Name()))] {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// ErrNothingRendered is returned when a plain directory holds manifests only
// in formats keyless does not render (CUE, templates, Jsonnet libraries).
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
	".cue":  "CUE is not rendered; commit its output as YAML",
	".tpl":  "templates are rendered only inside a Helm chart (Chart.yaml)",
	".tmpl": "templates are rendered only inside a Helm chart (Chart.yaml)",
	".j2":   "Jinja templates are not rendered; commit their output as YAML",
}

func whyNotRendered(name string) string {
	if why, ok := otherFormatReasons[strings.ToLower(filepath.Ext(name))]; ok {
		return why
	}
	return "not a *.yaml, *.yml, *.json or *.jsonnet file"
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
	note(path, readset.File)
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
