package render

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-jsonnet"
	"github.com/google/go-jsonnet/ast"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/readset"
)

// jsonnetExt is the ending of the Jsonnet files a plain folder renders;
// *.libsonnet files are read only when imported.
const jsonnetExt = ".jsonnet"

// JsonnetMaxStack is the deepest Jsonnet call stack an evaluation may reach
// (go-jsonnet's and the jsonnet CLI's default): unbounded recursion fails
// at once, naming the file and line.
const JsonnetMaxStack = 500

// jsonnetTraceFrames is how many stack frames an error shows.
const jsonnetTraceFrames = 5

// renderJsonnet evaluates the Jsonnet file rel (relative to root) of the
// plain folder dir, as Argo CD does: its output is an object, a list of
// objects, or a List kind (unwrapped). Imports are read through
// jsonnetImporter: inside root only, at most opts.Limits.MaxFileBytes each,
// no network. The output is bounded by the same size, the call stack by
// JsonnetMaxStack, the time by ctx.
func renderJsonnet(ctx context.Context, root, dir, rel string, opts Options, left int) ([]sourced, error) {
	j := opts.Directory.Jsonnet
	appDir := confine.Rel(root, dir)
	jpaths := []string{appDir}
	for _, lib := range j.Libs {
		inRoot, err := confine.Lexical(root, root, lib)
		if err != nil {
			return nil, fmt.Errorf("directory.jsonnet.libs %w", err)
		}
		jpaths = append(jpaths, filepath.ToSlash(inRoot))
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("opening root %s: %w", root, err)
	}
	defer func() { _ = r.Close() }()
	vm := jsonnet.MakeVM()
	vm.MaxStack = JsonnetMaxStack
	vm.ErrorFormatter = jsonnetErrorFormatter{}
	vm.SetTraceOut(io.Discard)
	im := &jsonnetImporter{ctx: ctx, root: r, rootDir: root, jpaths: jpaths, maxBytes: opts.Limits.MaxFileBytes}
	vm.Importer(im)
	for _, v := range j.ExtVars {
		if v.Code {
			vm.ExtCode(v.Name, v.Value)
		} else {
			vm.ExtVar(v.Name, v.Value)
		}
	}
	for _, v := range j.TLAs {
		if v.Code {
			vm.TLACode(v.Name, v.Value)
		} else {
			vm.TLAVar(v.Name, v.Value)
		}
	}
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	// go-jsonnet takes no context: the evaluation runs aside and is
	// abandoned when ctx ends (the render process is then ended by its
	// parent, which bounds its time).
	go func() {
		out, err := vm.EvaluateFile(filepath.ToSlash(rel))
		done <- result{out, err}
	}()
	var res result
	select {
	case <-ctx.Done():
		return nil, &LimitError{Limit: "--render-timeout", Where: rel, Detail: "Jsonnet evaluation did not finish: " + context.Cause(ctx).Error()}
	case res = <-done:
	}
	if res.err != nil {
		return nil, &jsonnetError{msg: strings.TrimSpace(res.err.Error()), cause: im.refused}
	}
	if int64(len(res.out)) > opts.Limits.MaxFileBytes {
		return nil, &LimitError{Limit: "--max-file-size", Where: rel, Detail: fmt.Sprintf("Jsonnet output is %d bytes, more than the limit of %d bytes", len(res.out), opts.Limits.MaxFileBytes)}
	}
	return decodeJsonnetOutput(rel, []byte(res.out), left)
}

// ErrJsonnet is returned (wrapped) when a Jsonnet file fails to evaluate;
// the message names the file:line:column. An import refused for leaving
// the root also wraps ErrOutsideRoot; one past a size limit, ErrLimit.
var ErrJsonnet = errors.New("jsonnet evaluation failed")

// jsonnetError is a failed evaluation: go-jsonnet's message (which names
// file:line:column) and the importer's refusal that caused it, if any.
type jsonnetError struct {
	msg   string
	cause error
}

func (e *jsonnetError) Error() string { return e.msg }

// Unwrap makes errors.Is hold for ErrJsonnet and for the refusal's sentinel.
func (e *jsonnetError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrJsonnet}
	}
	return []error{ErrJsonnet, e.cause}
}

// decodeJsonnetOutput turns a Jsonnet file's JSON output into objects: an
// array of objects (null items skipped, as in Argo CD) or one object; List
// kinds are unwrapped. Objects are named file (item N).
func decodeJsonnetOutput(rel string, out []byte, left int) ([]sourced, error) {
	out = bytes.TrimSpace(out)
	var items []json.RawMessage
	if len(out) > 0 && out[0] == '[' {
		if err := json.Unmarshal(out, &items); err != nil {
			return nil, fmt.Errorf("%s: Jsonnet output: %w", rel, err)
		}
	} else {
		items = []json.RawMessage{out}
	}
	var objs []sourced
	for i, raw := range items {
		source := rel
		if out[0] == '[' {
			source = rel + " (item " + strconv.Itoa(i) + ")"
		}
		raw = bytes.TrimSpace(raw)
		if bytes.Equal(raw, []byte("null")) {
			continue
		}
		if len(raw) == 0 || raw[0] != '{' {
			return nil, fmt.Errorf("%s: expected a Kubernetes object (or a list of them) as Jsonnet output, got %s", source, jsonKindOf(raw))
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%s: %w", source, objectError(err))
		}
		add := []sourced{{obj: u, source: source}}
		if isList(u) {
			var err error
			if add, err = listItems(source, u); err != nil {
				return nil, err
			}
		}
		if len(objs)+len(add) > left {
			return nil, tooManyObjects(source, left)
		}
		objs = append(objs, add...)
	}
	return objs, nil
}

func jsonKindOf(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	return jsonKind(raw)
}

// jsonnetImporter reads Jsonnet imports (import, importstr, importbin) from
// the repository only. Paths are slash paths relative to the root; an
// import is looked up beside the importing file, then in jpaths from the
// last to the first (Argo CD's order: the libs, then the rendered folder).
// An absolute path, or one whose ".." leaves the root, is refused; files are
// opened through an os.Root, so a symlink out of the root is refused too;
// each file is at most maxBytes.
type jsonnetImporter struct {
	ctx      context.Context //nolint:containedctx // go-jsonnet's Importer takes none; checked at each import
	root     *os.Root
	rootDir  string
	jpaths   []string
	maxBytes int64
	// refused is the first refusal (outside the root, too large): go-jsonnet
	// keeps only the text of an importer's error.
	refused error
}

// Import implements jsonnet.Importer. importedFrom is the importing file's
// foundAt ("" for the rendered file itself, whose path is then relative to
// the root).
func (im *jsonnetImporter) Import(importedFrom, importedPath string) (jsonnet.Contents, string, error) {
	c, foundAt, err := im.find(importedFrom, importedPath)
	if err != nil && im.refused == nil && (errors.Is(err, ErrOutsideRoot) || errors.Is(err, ErrLimit)) {
		im.refused = err
	}
	return c, foundAt, err
}

func (im *jsonnetImporter) find(importedFrom, importedPath string) (jsonnet.Contents, string, error) {
	if err := im.ctx.Err(); err != nil {
		return jsonnet.Contents{}, "", err
	}
	if importedPath == "" {
		return jsonnet.Contents{}, "", errors.New("import of an empty path")
	}
	if path.IsAbs(importedPath) || filepath.IsAbs(importedPath) || strings.HasPrefix(importedPath, `\`) {
		return jsonnet.Contents{}, "", fmt.Errorf("import %q: absolute paths are not allowed; import a path relative to the file or a directory.jsonnet.libs folder: %w", importedPath, ErrOutsideRoot)
	}
	dirs := []string{"."}
	if importedFrom != "" {
		dirs[0] = path.Dir(importedFrom)
	}
	for i := len(im.jpaths) - 1; i >= 0; i-- {
		dirs = append(dirs, im.jpaths[i])
	}
	for _, d := range dirs {
		cand, ok := jsonnetCandidate(d, importedPath)
		if !ok {
			return jsonnet.Contents{}, "", fmt.Errorf("import %q from %s: %w", importedPath, d, ErrOutsideRoot)
		}
		data, err := im.read(cand)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return jsonnet.Contents{}, "", err
		}
		return jsonnet.MakeContentsRaw(data), cand, nil
	}
	return jsonnet.Contents{}, "", fmt.Errorf("import %q: not found beside the importing file, in directory.jsonnet.libs or in the rendered folder", importedPath)
}

// jsonnetCandidate joins dir and p (slash paths, dir relative to the root)
// and says whether the result stays inside the root.
func jsonnetCandidate(dir, p string) (string, bool) {
	p = strings.ReplaceAll(p, `\`, "/")
	c := path.Join(dir, p)
	if c == ".." || strings.HasPrefix(c, "../") || path.IsAbs(c) {
		return "", false
	}
	return c, true
}

// read reads cand (relative to the root) through the os.Root: a missing
// file is fs.ErrNotExist; a folder is skipped like a missing file; a
// symlink leaving the root is ErrOutsideRoot.
func (im *jsonnetImporter) read(cand string) ([]byte, error) {
	note(filepath.Join(im.rootDir, filepath.FromSlash(cand)), readset.File)
	f, err := im.root.Open(filepath.FromSlash(cand))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if _, jerr := joinNoted(im.rootDir, im.rootDir, filepath.FromSlash(cand)); jerr != nil {
			return nil, fmt.Errorf("import %s: %w", cand, jerr)
		}
		return nil, fmt.Errorf("import %s: %w", cand, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", cand, err)
	}
	if fi.IsDir() {
		return nil, fs.ErrNotExist
	}
	if fi.Size() > im.maxBytes {
		return nil, fileTooLarge(cand, fi.Size(), im.maxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, im.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", cand, err)
	}
	if int64(len(data)) > im.maxBytes {
		return nil, fileTooLarge(cand, 0, im.maxBytes)
	}
	return data, nil
}

// jsonnetErrorFormatter formats go-jsonnet's errors as keyless's: the
// file:line:column first, then the message and a short stack.
type jsonnetErrorFormatter struct{}

// Format implements jsonnet.ErrorFormatter.
func (jsonnetErrorFormatter) Format(err error) string {
	var rt jsonnet.RuntimeError
	if errors.As(err, &rt) {
		// StackTrace runs from the outermost frame to the innermost: the
		// innermost frame with a location is where the error is.
		var frames []jsonnet.TraceFrame
		for i := len(rt.StackTrace) - 1; i >= 0; i-- {
			if f := rt.StackTrace[i]; f.Loc.IsSet() {
				frames = append(frames, f)
			}
		}
		if len(frames) == 0 {
			return rt.Msg
		}
		var b strings.Builder
		b.WriteString(jsonnetLoc(frames[0].Loc) + ": " + rt.Msg)
		if strings.HasPrefix(rt.Msg, "max stack frames exceeded") {
			fmt.Fprintf(&b, " (at most %d nested calls: unbounded recursion?)", JsonnetMaxStack)
		}
		for i, f := range frames[1:] {
			if i == jsonnetTraceFrames {
				fmt.Fprintf(&b, "\n\t… %d more frames", len(frames)-1-i)
				break
			}
			fmt.Fprintf(&b, "\n\t%s %s", jsonnetLoc(f.Loc), f.Name)
		}
		return b.String()
	}
	var static interface{ Loc() ast.LocationRange }
	if errors.As(err, &static) {
		loc := static.Loc()
		msg := strings.TrimSpace(strings.TrimPrefix(err.Error(), loc.String()))
		return jsonnetLoc(loc) + ": " + msg
	}
	return err.Error()
}

// SetMaxStackTraceSize implements jsonnet.ErrorFormatter (fixed size).
func (jsonnetErrorFormatter) SetMaxStackTraceSize(int) {}

// SetColorFormatter implements jsonnet.ErrorFormatter (no colours).
func (jsonnetErrorFormatter) SetColorFormatter(jsonnet.ColorFormatter) {}

func jsonnetLoc(l ast.LocationRange) string {
	name := l.FileName
	if l.File != nil && l.File.DiagnosticFileName != "" {
		name = string(l.File.DiagnosticFileName)
	}
	if !l.IsSet() {
		return name
	}
	return fmt.Sprintf("%s:%d:%d", name, l.Begin.Line, l.Begin.Column)
}
