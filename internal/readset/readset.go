// Package readset records what a render read from a checkout — the files it
// opened, the paths it looked at, the folders it listed or loaded whole —
// and says what those inputs are in a Git commit, so that a commit that
// leaves every one of them as it was can reuse the render before it.
//
// A Recorder collects Inputs (paths relative to the checkout root, the way
// they were named, symlinks included) while a render runs. Values gives each
// input's value in a commit's tree, following symlinks as the file system
// would and folding every link on the way into the value: two commits in
// which every input has the same value render the same objects.
package readset

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Access is how a render used a path.
type Access string

// The accesses a render makes, from the narrowest to the widest.
const (
	// Stat is whether the path exists and is a file or a folder.
	Stat Access = "stat"
	// File is a file's content.
	File Access = "file"
	// List is a folder's entries: names, kinds and where symlinks point.
	List Access = "list"
	// Tree is a folder and everything below it (a chart loaded whole).
	Tree Access = "tree"
)

// Input is one path a render used, relative to the checkout root with
// forward slashes ("." is the root).
type Input struct {
	Path   string `json:"path"`
	Access Access `json:"access"`
}

// MaxInputs bounds the inputs one render may report: a render that reads
// more is not keyed (it renders every time), so a hostile repository cannot
// make the controller hold or hash an unbounded list.
const MaxInputs = 10000

// Recorder collects the inputs of renders of one checkout root. It is safe
// for concurrent use.
type Recorder struct {
	root   string
	exempt []string // folders outside root whose reads are keyed elsewhere

	mu       sync.Mutex
	seen     map[Input]struct{}
	overflow bool
}

// NewRecorder records reads below root (absolute, symlinks resolved, as
// confine.Root returns it). Reads below an exempt folder (the chart archives
// the controller fetched, keyed by their own versions) are not inputs.
func NewRecorder(root string, exempt ...string) *Recorder {
	return &Recorder{root: filepath.Clean(root), exempt: exempt, seen: map[Input]struct{}{}}
}

// Covers says whether path (absolute) is this recorder's concern: inside
// its root or an exempt folder.
func (r *Recorder) Covers(path string) bool {
	if _, ok := within(r.root, path); ok {
		return true
	}
	for _, e := range r.exempt {
		if _, ok := within(e, path); ok {
			return true
		}
	}
	return false
}

// Note records that path (absolute) was used with access a. A path inside
// an exempt folder is ignored; one outside root must not be noted (Covers).
func (r *Recorder) Note(path string, a Access) {
	rel, ok := within(r.root, filepath.Clean(path))
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) >= MaxInputs {
		r.overflow = true
		return
	}
	r.seen[Input{Path: rel, Access: a}] = struct{}{}
}

// Spoil marks the render as not keyable: it read something no input can
// describe (a file outside every root it knows).
func (r *Recorder) Spoil() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overflow = true
}

// Inputs returns the inputs recorded, sorted, and whether they describe
// the render completely (false: too many, or a read nothing can key).
func (r *Recorder) Inputs() ([]Input, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overflow {
		return nil, false
	}
	out := make([]Input, 0, len(r.seen))
	for in := range r.seen {
		out = append(out, in)
	}
	Sort(out)
	return out, true
}

// Sort orders inputs by path, then access.
func Sort(inputs []Input) {
	slices.SortFunc(inputs, func(a, b Input) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(string(a.Access), string(b.Access))
	})
}

// within returns path relative to root with forward slashes when it is
// root or below it.
func within(root, path string) (string, bool) {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}
