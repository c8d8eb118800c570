package ociartifact

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/keyless-cd/keyless/internal/confine"
)

// Unpack writes the gzipped tar r into the empty folder dir, through an
// os.Root on it, with the rules of a Git checkout: every name element
// passes confine.CheckName, every symlink confine.CheckSymlink and, once
// all is written, resolves inside dir (or to nothing); hard links, device
// files and FIFOs are refused; entries, bytes and depth are bounded by
// limits. Files and folders are made read-only. The error names the entry
// (a *LimitError the Limits field). On error dir holds a partial tree for
// the caller to remove.
func Unpack(ctx context.Context, r io.Reader, dir string, limits Limits) error {
	limits = limits.WithDefaults()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("the content layer is not gzip: %w", err)
	}
	// The tar stream itself (headers, padding, skipped content) is bounded
	// too: a stream of headers or padding decompresses without limit else.
	streamLimit := limits.MaxUnpackedBytes + int64(limits.MaxFiles+2)*3*512 + 1<<20
	u := &unpacker{ctx: ctx, root: root, limits: limits,
		stream: &limitedReader{r: zr, n: streamLimit, limit: streamLimit}}
	tr := tar.NewReader(u.stream)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if u.stream.exceeded() {
				return u.streamError()
			}
			return fmt.Errorf("reading the tar after entry %d: %w", u.files, err)
		}
		if err := u.entry(tr, hdr); err != nil {
			if u.stream.exceeded() {
				return u.streamError()
			}
			return err
		}
	}
	return u.finish()
}

// unpacker is one Unpack's state.
type unpacker struct {
	ctx    context.Context
	root   *os.Root
	limits Limits
	stream *limitedReader

	files int
	bytes int64
	links []string // symlinks written, resolved once all is there
	execs []string // files with an execute bit
}

func (u *unpacker) streamError() error {
	return &LimitError{Limit: "MaxUnpackedBytes", Where: "the content layer",
		Detail: fmt.Sprintf("the tar stream is longer than %d bytes", u.stream.limit)}
}

// name checks a tar entry's name and returns it as a clean slash path ("."
// for the folder itself).
func name(raw string) (string, error) {
	n := strings.TrimPrefix(raw, "./")
	n = strings.TrimSuffix(n, "/")
	if n == "" || n == "." {
		return ".", nil
	}
	if len(n) > maxPathBytes {
		return "", fmt.Errorf("entry %.80q…: a name longer than %d bytes: %w", raw, maxPathBytes, ErrUnsafe)
	}
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("entry %q: an absolute name leaves the folder: %w", raw, ErrUnsafe)
	}
	elems := strings.Split(n, "/")
	if len(elems) > maxDepth {
		return "", fmt.Errorf("entry %.200q: nested deeper than %d folders: %w", raw, maxDepth, ErrUnsafe)
	}
	for _, e := range elems {
		if err := confine.CheckName(e); err != nil {
			return "", fmt.Errorf("entry %q: %q: %w: %w", raw, e, err, ErrUnsafe)
		}
	}
	return n, nil
}

func (u *unpacker) entry(tr *tar.Reader, hdr *tar.Header) error {
	if err := u.ctx.Err(); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	n, err := name(hdr.Name)
	if err != nil {
		return err
	}
	if n == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("entry %q: the folder itself as a %s: %w", hdr.Name, typeName(hdr.Typeflag), ErrUnsafe)
		}
		return nil
	}
	if u.files++; u.files > u.limits.MaxFiles {
		return &LimitError{Limit: "MaxFiles", Where: fmt.Sprintf("entry %q", hdr.Name), Detail: fmt.Sprintf("more than %d entries", u.limits.MaxFiles)}
	}
	osName := filepath.FromSlash(n)
	if dir := filepath.Dir(osName); dir != "." {
		if err := u.root.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, unsafe(err))
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := u.root.Mkdir(osName, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("entry %q: %w", hdr.Name, unsafe(err))
		}
		if info, err := u.root.Lstat(osName); err != nil || !info.IsDir() {
			return fmt.Errorf("entry %q: a folder where another entry is: %w", hdr.Name, ErrUnsafe)
		}
		return nil
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old tars still use TypeRegA
		return u.file(tr, hdr, osName)
	case tar.TypeSymlink:
		if len(hdr.Linkname) > maxSymlinkTarget {
			return fmt.Errorf("entry %q: a symlink target longer than %d bytes: %w", hdr.Name, maxSymlinkTarget, ErrUnsafe)
		}
		if err := confine.CheckSymlink(n, hdr.Linkname); err != nil {
			return fmt.Errorf("entry %q: %w: %w", hdr.Name, err, ErrUnsafe)
		}
		if err := u.root.Symlink(hdr.Linkname, osName); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, unsafe(err))
		}
		u.links = append(u.links, osName)
		return nil
	}
	return fmt.Errorf("entry %q: a %s: %w (only files, folders and symlinks inside the folder are unpacked)", hdr.Name, typeName(hdr.Typeflag), ErrUnsafe)
}

// file writes a regular file entry, bounded by MaxUnpackedBytes.
func (u *unpacker) file(tr *tar.Reader, hdr *tar.Header, osName string) error {
	if hdr.Size < 0 || hdr.Size > u.limits.MaxUnpackedBytes-u.bytes {
		return &LimitError{Limit: "MaxUnpackedBytes", Where: fmt.Sprintf("entry %q", hdr.Name),
			Detail: fmt.Sprintf("%d bytes would make more than %d bytes unpacked", hdr.Size, u.limits.MaxUnpackedBytes)}
	}
	u.bytes += hdr.Size
	f, err := u.root.OpenFile(osName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, unsafe(err))
	}
	_, err = io.Copy(f, tr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	if hdr.Mode&0o111 != 0 {
		u.execs = append(u.execs, osName)
	}
	return nil
}

// finish checks the symlinks and makes the tree read-only.
func (u *unpacker) finish() error {
	for _, l := range u.links {
		if _, err := u.root.Stat(l); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("entry %q: symlink leaves the folder or loops: %w", filepath.ToSlash(l), ErrUnsafe)
		}
	}
	var dirs []string
	err := fs.WalkDir(u.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type().IsRegular():
			mode := os.FileMode(0o400)
			if slices.Contains(u.execs, filepath.FromSlash(p)) {
				mode = 0o500
			}
			return u.root.Chmod(p, mode)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := u.root.Chmod(dirs[i], 0o555); err != nil {
			return err
		}
	}
	return nil
}

// unsafe marks a write refused by the os.Root (a path through a symlink, a
// name taken) as ErrUnsafe.
func unsafe(err error) error {
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("a duplicate entry: %w", ErrUnsafe)
	}
	return fmt.Errorf("%w: %w", err, ErrUnsafe)
}

func typeName(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeReg:
		return "file"
	case tar.TypeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}

// limitedReader reads at most n bytes and then fails, remembering it did.
type limitedReader struct {
	r        io.Reader
	n, limit int64
}

var errStreamLimit = errors.New("stream limit reached")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errStreamLimit
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func (l *limitedReader) exceeded() bool { return l.n <= 0 }

// RemoveTree deletes an unpacked artifact (its folders made writable
// first). Symlinks are never followed.
func RemoveTree(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
