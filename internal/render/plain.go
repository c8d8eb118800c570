package render

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// manifestExts are the file endings read from a plain directory.
var manifestExts = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// renderPlain reads every *.yaml, *.yml and *.json file below dir (recursive,
// hidden folders and files skipped, sorted by path), confined to root.
func renderPlain(root, dir string, lim Limits) ([]sourced, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading %s: %w", relToRoot(root, path), err)
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
				if _, err := confinedPath(root, filepath.Dir(path), name); err != nil {
					return err
				}
			}
			return nil
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []sourced
	for _, path := range files {
		rel := relToRoot(root, path)
		resolved, err := confinedPath(root, filepath.Dir(path), filepath.Base(path))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		data, err := readLimited(resolved, rel, lim.MaxFileBytes)
		if err != nil {
			return nil, err
		}
		objs, err := decodeObjects(rel, data, lim.MaxObjects-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
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
