package preview

import (
	"strings"

	"github.com/keyless-cd/keyless/internal/webhook"
)

// SameRepository reports whether two Git URLs name the same repository,
// whatever the transport and credentials: https://gitlab-ci-token:x@host/g/p.git,
// ssh://git@host:22/g/p, git@host:g/p.git and https://host/g/p are one
// repository (webhook.NormalizeRepoURL, as the webhook matches pushes). A
// URL without a host or a path (a local folder) matches nothing.
func SameRepository(a, b string) bool {
	na, nb := webhook.NormalizeRepoURL(a), webhook.NormalizeRepoURL(b)
	host, path, _ := strings.Cut(na, "/")
	return host != "" && path != "" && na == nb
}
