package artifactsign_test

import (
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

func fetchAll(t *testing.T, repo *remote.Repository, d ocispec.Descriptor) ([]byte, error) {
	t.Helper()
	rc, err := repo.Fetch(t.Context(), d)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	return io.ReadAll(rc)
}

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }
