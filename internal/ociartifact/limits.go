package ociartifact

import (
	"errors"
	"fmt"
)

// Limits bound what a registry may send and what one artifact may unpack
// to. Zero fields take the defaults documented on each, filled in by
// WithDefaults.
type Limits struct {
	// MaxManifestBytes bounds a manifest. Default 4 MiB.
	MaxManifestBytes int64
	// MaxLayerBytes bounds the content layer as sent (compressed).
	// Default 64 MiB.
	MaxLayerBytes int64
	// MaxUnpackedBytes bounds the sum of the unpacked files' sizes.
	// Default 256 MiB (a Git checkout's default).
	MaxUnpackedBytes int64
	// MaxFiles bounds the entries of the layer. Default 20000 (a Git
	// checkout's default).
	MaxFiles int
	// MaxTags bounds the tags read to resolve a semver range. Default 10000.
	MaxTags int
}

// Limits of one artifact that are not options: deeper nesting or longer
// names than any real folder uses are refused.
const (
	maxDepth         = 64
	maxPathBytes     = 4096
	maxSymlinkTarget = 4096
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxManifestBytes, 4<<20)
	def(&l.MaxLayerBytes, 64<<20)
	def(&l.MaxUnpackedBytes, 256<<20)
	if l.MaxFiles <= 0 {
		l.MaxFiles = 20000
	}
	if l.MaxTags <= 0 {
		l.MaxTags = 10000
	}
	return l
}

// ErrUnsafe is returned (wrapped) when a layer holds an entry that cannot be
// unpacked safely: a name or symlink leaving the folder, a hard link, a
// device file, a duplicate. The error names the entry.
var ErrUnsafe = errors.New("unsafe artifact")

// ErrNotArtifact is returned (wrapped) when a manifest is not a keyless or
// Flux artifact (no content layer of ContentMediaType).
var ErrNotArtifact = errors.New("not a Flux artifact")

// ErrNotFound is returned (wrapped) when no tag matches, or a tag or digest
// is not in the repository.
var ErrNotFound = errors.New("not found")

// LimitError is a Limits field exceeded, naming the field and where.
type LimitError struct {
	Limit, Where, Detail string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %s (Limits.%s)", e.Where, e.Detail, e.Limit)
}

// DigestError is content whose digest is not the one asked for: a tampered
// manifest or layer.
type DigestError struct {
	What, Want, Got string
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("%s: digest %s, want %s: the registry sent other bytes than the digest names", e.What, e.Got, e.Want)
}
