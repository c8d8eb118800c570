package ociartifact

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/keyless-cd/keyless/internal/confine"
)

// Pack writes the folder dir to w as the gzipped tar of an artifact's
// content layer, reproducibly: entries in lexical order, names relative to
// dir, no owners, times or gzip name, modes reduced to 0644/0755 (and 0755
// for folders), so the same files give the same bytes and the same digest.
// The layout is Flux's (fluxcd/pkg/tar): a "." entry first, folders
// without a trailing slash, a default-level gzip stream. .git folders are
// left out. Flux unpacks no symlinks, so a symlink to a file inside dir is
// packed as a copy of that file; a symlink to a folder, one leaving dir,
// and any other kind of file (device, socket, FIFO) are refused naming it.
func Pack(dir string, w io.Writer) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return fs.SkipDir
		}
		return packEntry(root, tw, p, d)
	})
	if err != nil {
		return fmt.Errorf("packing %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// packEntry writes one entry (p a slash path inside root).
func packEntry(root *os.Root, tw *tar.Writer, p string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: p, ModTime: time.Time{}}
	if d.Type()&fs.ModeSymlink != 0 {
		target, err := root.Readlink(filepath.FromSlash(p))
		if err != nil {
			return err
		}
		if err := confine.CheckSymlink(p, target); err != nil {
			return fmt.Errorf("%w: %w", err, ErrUnsafe)
		}
		// Stat through the root: a chain of links leaving dir fails here.
		if info, err = root.Stat(filepath.FromSlash(p)); err != nil {
			return fmt.Errorf("%s: symlink to %q: %w", p, target, err)
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s: symlink to the %s %q: Flux does not unpack symlinks, so only links to files are packed (as copies); put the folder there instead: %w", p, info.Mode().Type(), target, ErrUnsafe)
		}
	}
	switch {
	case info.IsDir():
		hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		return tw.WriteHeader(hdr)
	case info.Mode().IsRegular():
		hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, info.Size(), 0o644
		if info.Mode()&0o111 != 0 {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := root.Open(filepath.FromSlash(p))
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		n, err := io.Copy(tw, f)
		if err == nil && n != info.Size() {
			err = errors.New("the file changed while it was packed")
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	}
	return fmt.Errorf("%s: a %s is not packed (only files, folders and symlinks): %w", p, info.Mode().Type(), ErrUnsafe)
}
