package ociartifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// entry is one tar entry of a crafted layer.
type entry struct {
	name, body, link string
	typ              byte
}

// layerOf gzips a tar of entries.
func layerOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestUnpackRefusesHostileLayers(t *testing.T) {
	for _, c := range []struct {
		name    string
		entries []entry
		want    string // in the error: the entry
	}{
		{"an escaping symlink", []entry{{name: "x", typ: tar.TypeSymlink, link: "../../etc/passwd"}}, `"x"`},
		{"an absolute symlink", []entry{{name: "a/x", typ: tar.TypeSymlink, link: "/etc/passwd"}}, `"a/x"`},
		{"a chain of links leaving", []entry{{name: "d", typ: tar.TypeSymlink, link: "."}, {name: "e", typ: tar.TypeSymlink, link: "d/.."}}, `"e"`},
		{"a file through a symlink out", []entry{{name: "d", typ: tar.TypeSymlink, link: "."}, {name: "d/../../evil", body: "x"}}, `"d/../../evil"`},
		{"dot-dot", []entry{{name: "../evil", body: "x"}}, `"../evil"`},
		{"an absolute name", []entry{{name: "/etc/evil", body: "x"}}, `"/etc/evil"`},
		{"a .git folder", []entry{{name: ".git/config", body: "x"}}, `".git/config"`},
		{"a character device", []entry{{name: "null", typ: tar.TypeChar}}, `"null": a character device`},
		{"a block device", []entry{{name: "sda", typ: tar.TypeBlock}}, `"sda": a block device`},
		{"a FIFO", []entry{{name: "p", typ: tar.TypeFifo}}, `"p": a FIFO`},
		{"a hard link", []entry{{name: "a", body: "x"}, {name: "b", typ: tar.TypeLink, link: "a"}}, `"b": a hard link`},
		{"a duplicate", []entry{{name: "a", body: "x"}, {name: "a", body: "y"}}, `"a": a duplicate`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			err := Unpack(t.Context(), bytes.NewReader(layerOf(t, c.entries...)), dir, Limits{})
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrUnsafe naming %s", err, c.want)
			}
		})
	}
}

// streamed is a layer written as it is read: a tar header declaring size
// bytes of zeros, then the zeros; or n empty files. Nothing of it is held
// in memory, and the writer stops when the reader does.
func streamed(t *testing.T, write func(tw *tar.Writer) error) io.Reader {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		tw := tar.NewWriter(zw)
		err := write(tw)
		if err == nil {
			err = tw.Close()
		}
		if err == nil {
			err = zw.Close()
		}
		_ = pw.CloseWithError(err)
	}()
	t.Cleanup(func() { _ = pr.Close() })
	return pr
}

func TestUnpackBoundsSizeAndEntries(t *testing.T) {
	t.Run("10 GB of zeros", func(t *testing.T) {
		r := streamed(t, func(tw *tar.Writer) error {
			const size = 10 << 30
			if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
				return err
			}
			_, err := io.CopyN(tw, zeros{}, size)
			return err
		})
		err := Unpack(t.Context(), r, t.TempDir(), Limits{})
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != "MaxUnpackedBytes" || !strings.Contains(err.Error(), `"zeros"`) {
			t.Fatalf("got %v, want MaxUnpackedBytes naming the entry", err)
		}
	})
	t.Run("many files of zeros within the declared sizes", func(t *testing.T) {
		// Each file is small; together they pass the limit.
		r := streamed(t, func(tw *tar.Writer) error {
			for i := range 100 {
				if err := tw.WriteHeader(&tar.Header{Name: "z" + strings.Repeat("0", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26)), Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 20}); err != nil {
					return err
				}
				if _, err := io.CopyN(tw, zeros{}, 1<<20); err != nil {
					return err
				}
			}
			return nil
		})
		err := Unpack(t.Context(), r, t.TempDir(), Limits{MaxUnpackedBytes: 10 << 20})
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != "MaxUnpackedBytes" {
			t.Fatalf("got %v, want MaxUnpackedBytes", err)
		}
	})
	t.Run("1M entries", func(t *testing.T) {
		r := streamed(t, func(tw *tar.Writer) error {
			for i := range 1_000_000 {
				if err := tw.WriteHeader(&tar.Header{Name: "d/f" + itoa(i), Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
					return err
				}
			}
			return nil
		})
		err := Unpack(t.Context(), r, t.TempDir(), Limits{})
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != "MaxFiles" || !strings.Contains(err.Error(), `"d/f20000"`) {
			t.Fatalf("got %v, want MaxFiles naming entry d/f20000", err)
		}
	})
	t.Run("a stream of empty headers", func(t *testing.T) {
		// Global headers count no entry; the stream limit stops them.
		r := streamed(t, func(tw *tar.Writer) error {
			for range 1_000_000 {
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": strings.Repeat("x", 400)}}); err != nil {
					return err
				}
			}
			return nil
		})
		err := Unpack(t.Context(), r, t.TempDir(), Limits{MaxUnpackedBytes: 1 << 20, MaxFiles: 10})
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != "MaxUnpackedBytes" {
			t.Fatalf("got %v, want the stream bounded (MaxUnpackedBytes)", err)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestPackIsReproducibleAndRoundTrips(t *testing.T) {
	src := t.TempDir()
	write := func(name, body string, mode os.FileMode) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("b/deploy.yaml", "kind: Deployment\n", 0o600)
	write("a.yaml", "kind: ConfigMap\n", 0o644)
	write("run.sh", "#!/bin/sh\n", 0o700)
	write(".git/config", "secret", 0o600)
	if err := os.Symlink("b/deploy.yaml", filepath.Join(src, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	var one, two bytes.Buffer
	if err := Pack(src, &one); err != nil {
		t.Fatal(err)
	}
	// Other times and permissions, same content: same bytes.
	if err := os.Chmod(filepath.Join(src, "b", "deploy.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(src, "a.yaml"), time0, time0); err != nil {
		t.Fatal(err)
	}
	if err := Pack(src, &two); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Fatal("packing the same files twice gave other bytes")
	}
	dir := t.TempDir()
	if err := Unpack(t.Context(), bytes.NewReader(one.Bytes()), dir, Limits{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a.yaml": "kind: ConfigMap\n", "b/deploy.yaml": "kind: Deployment\n", "link.yaml": "kind: Deployment\n", "run.sh": "#!/bin/sh\n"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q %v, want %q", name, got, err, want)
		}
	}
	if info, err := os.Lstat(filepath.Join(dir, "link.yaml")); err != nil || !info.Mode().IsRegular() {
		t.Errorf("link.yaml: want a copy of the file Flux can unpack, got %v %v", info.Mode(), err)
	}
	if info, err := os.Stat(filepath.Join(dir, "run.sh")); err != nil || info.Mode().Perm() != 0o500 {
		t.Errorf("run.sh: %v %v, want 0500", info.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".git was packed: %v", err)
	}

	// Links Flux cannot unpack are refused, naming them.
	if err := os.Symlink("b", filepath.Join(src, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := Pack(src, io.Discard); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "dirlink") {
		t.Errorf("a link to a folder: %v", err)
	}
	_ = os.Remove(filepath.Join(src, "dirlink"))
	if err := os.Symlink("../../etc/passwd", filepath.Join(src, "out")); err != nil {
		t.Fatal(err)
	}
	if err := Pack(src, io.Discard); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "out") {
		t.Errorf("a link leaving the folder: %v", err)
	}
}

var time0 = time.Unix(1e9, 0)
