package ociartifact

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUnpack: whatever the layer, Unpack writes nothing outside its folder,
// leaves no symlink resolving outside it, and everything it accepted is
// read-only.
func FuzzUnpack(f *testing.F) {
	f.Add(layerOf(&testing.T{}, entry{name: "a/b.yaml", body: "x"}, entry{name: "l", typ: tar.TypeSymlink, link: "a/b.yaml"}))
	f.Add(layerOf(&testing.T{}, entry{name: "d", typ: tar.TypeSymlink, link: "."}, entry{name: "e", typ: tar.TypeSymlink, link: "d/.."}))
	f.Add(layerOf(&testing.T{}, entry{name: "./", typ: tar.TypeDir}, entry{name: "x/../../y", body: "z"}))
	f.Add(layerOf(&testing.T{}, entry{name: "a", typ: tar.TypeDir}, entry{name: "a", body: "x"}))
	f.Fuzz(func(t *testing.T, layer []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "in")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		err := Unpack(t.Context(), bytes.NewReader(layer), dir, Limits{MaxFiles: 50, MaxUnpackedBytes: 1 << 20})
		defer func() { _ = RemoveTree(dir) }()
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Fatalf("Unpack wrote beside its folder: %d entries", len(entries))
		}
		if err != nil {
			return
		}
		walkErr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 {
				target, err := filepath.EvalSymlinks(p)
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						return nil
					}
					return err
				}
				if rel, _ := filepath.Rel(dir, target); rel == ".." || strings.HasPrefix(rel, "../") {
					t.Fatalf("%s resolves outside the folder: %s", p, target)
				}
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Mode().Perm()&0o222 != 0 {
				t.Fatalf("%s is writable: %v", p, info.Mode())
			}
			return nil
		})
		if walkErr != nil {
			t.Fatal(walkErr)
		}
	})
}

// FuzzParseRevision: an accepted revision splits into a tag without '@'
// (or none) and a sha256 digest, and joins back into itself.
func FuzzParseRevision(f *testing.F) {
	f.Add("latest@sha256:" + strings.Repeat("0", 64))
	f.Add("sha256:" + strings.Repeat("a", 64))
	f.Add("v1@@sha256:")
	f.Add("@sha256:" + strings.Repeat("0", 64)) // an empty tag was once accepted
	f.Fuzz(func(t *testing.T, rev string) {
		tag, digest, err := ParseRevision(rev)
		if err != nil {
			return
		}
		if !IsDigest(digest) || strings.Contains(tag, "@") {
			t.Fatalf("%q → tag %q digest %q", rev, tag, digest)
		}
		if (Resolved{Tag: tag, Digest: digest}).Revision() != rev {
			t.Fatalf("%q → %q %q does not join back", rev, tag, digest)
		}
	})
}
