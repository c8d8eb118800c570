package forge

import (
	"net/url"
	"strings"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// wellKnown are the public forges recognised by their host alone.
var wellKnown = map[string]string{
	"github.com":   kv1.ForgeGitHub,
	"gitlab.com":   kv1.ForgeGitLab,
	"codeberg.org": kv1.ForgeForgejo,
	"gitea.com":    kv1.ForgeGitea,
}

// ProviderOf says which forge serves app's repository: the provider of
// spec.commitStatus when set, else a well-known public host (github.com,
// gitlab.com, codeberg.org, gitea.com), else "" (unknown).
func ProviderOf(app *kv1.Application) string {
	if app.Spec.CommitStatus != nil && app.Spec.CommitStatus.Provider != "" {
		return app.Spec.CommitStatus.Provider
	}
	r, err := parseRepoURL(app.Spec.Source.RepoURL)
	if err != nil {
		return ""
	}
	return wellKnown[strings.ToLower(r.host)]
}

// CommitURL is the web page of commit sha at the forge (provider as
// ProviderOf says) serving repoURL, or "" when the repository or the SHA
// is not one a forge link can be built from. The link is always https
// (http only when repoURL itself is http) and names only the repository's
// own host and path.
func CommitURL(provider, repoURL, sha string) string {
	if !isSHA(sha) {
		return ""
	}
	r, err := parseRepoURL(repoURL)
	if err != nil {
		return ""
	}
	u := url.URL{Scheme: "https", Host: r.host, Path: "/" + r.path}
	switch r.scheme {
	case "http":
		u.Scheme = "http"
		fallthrough
	case "https":
		if r.port != "" {
			u.Host = r.host + ":" + r.port
		}
	}
	switch provider {
	case kv1.ForgeGitHub, kv1.ForgeGitea, kv1.ForgeForgejo:
		u.Path += "/commit/" + sha
	case kv1.ForgeGitLab:
		u.Path += "/-/commit/" + sha
	default:
		return ""
	}
	return u.String()
}
