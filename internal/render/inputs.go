package render

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/readset"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Every read a render makes of the checkout goes through one of the
// functions of this file, which tells the Recorder of each render running
// on that checkout (Result.Inputs). A read of a path under no running
// render's root or exempt folder (a multi-source $ref checkout) spoils
// them all: such a render is never reused.

// recorders are the renders running in this process.
var recorders = struct {
	sync.Mutex
	active map[*readset.Recorder]struct{}
}{active: map[*readset.Recorder]struct{}{}}

// track starts recording the reads of a render of root; the returned
// function stops it.
func track(root string, opts Options) (*readset.Recorder, func()) {
	exempt := append([]string{}, opts.Helm.Dependencies...)
	for _, dir := range opts.Helm.PulledCharts {
		exempt = append(exempt, dir)
	}
	rec := readset.NewRecorder(root, exempt...)
	recorders.Lock()
	recorders.active[rec] = struct{}{}
	recorders.Unlock()
	return rec, func() {
		recorders.Lock()
		delete(recorders.active, rec)
		recorders.Unlock()
	}
}

// note tells the running renders that path was used with access a.
func note(path string, a readset.Access) {
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			spoilAll()
			return
		}
		path = abs
	}
	path = filepath.Clean(path)
	recorders.Lock()
	defer recorders.Unlock()
	covered := false
	for rec := range recorders.active {
		if rec.Covers(path) {
			rec.Note(path, a)
			covered = true
		}
	}
	if !covered {
		for rec := range recorders.active {
			rec.Spoil()
		}
	}
}

func spoilAll() {
	recorders.Lock()
	defer recorders.Unlock()
	for rec := range recorders.active {
		rec.Spoil()
	}
}

// statNoted is os.Stat, noted.
func statNoted(path string) (os.FileInfo, error) {
	note(path, readset.Stat)
	return os.Stat(path)
}

// lstatNoted is os.Lstat, noted.
func lstatNoted(path string) (os.FileInfo, error) {
	note(path, readset.Stat)
	return os.Lstat(path)
}

// joinNoted is confine.Join, noting the path as named (its symlinks are
// part of what the render depends on, not only where they lead).
func joinNoted(root, base, rel string) (string, error) {
	if inRoot, err := confine.Lexical(root, base, rel); err == nil {
		note(filepath.Join(root, inRoot), readset.Stat)
	}
	return confine.Join(root, base, rel)
}

// recordingFS notes every read kustomize makes through it; it wraps the
// on-disk file system, under every other wrapper, so in-memory content
// (inflated charts) is not noted.
type recordingFS struct {
	filesys.FileSystem
}

// Open notes the file read.
func (r recordingFS) Open(path string) (filesys.File, error) {
	note(path, readset.File)
	return r.FileSystem.Open(path)
}

// ReadFile notes the file read.
func (r recordingFS) ReadFile(path string) ([]byte, error) {
	note(path, readset.File)
	return r.FileSystem.ReadFile(path)
}

// IsDir notes the path looked at.
func (r recordingFS) IsDir(path string) bool {
	note(path, readset.Stat)
	return r.FileSystem.IsDir(path)
}

// Exists notes the path looked at.
func (r recordingFS) Exists(path string) bool {
	note(path, readset.Stat)
	return r.FileSystem.Exists(path)
}

// CleanedAbs notes the path resolved.
func (r recordingFS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	note(path, readset.Stat)
	return r.FileSystem.CleanedAbs(path)
}

// ReadDir notes the folder listed.
func (r recordingFS) ReadDir(path string) ([]string, error) {
	note(path, readset.List)
	return r.FileSystem.ReadDir(path)
}

// Glob notes everything below the pattern's fixed prefix.
func (r recordingFS) Glob(pattern string) ([]string, error) {
	note(globPrefix(pattern), readset.Tree)
	return r.FileSystem.Glob(pattern)
}

// Walk notes the folder walked, whole.
func (r recordingFS) Walk(path string, walkFn filepath.WalkFunc) error {
	note(path, readset.Tree)
	return r.FileSystem.Walk(path, walkFn)
}

// globPrefix is the folder of pattern above its first wildcard.
func globPrefix(pattern string) string {
	i := strings.IndexAny(pattern, `*?[\`)
	if i < 0 {
		return filepath.Dir(pattern)
	}
	return filepath.Dir(pattern[:i+1])
}
