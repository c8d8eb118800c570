package argocd

import (
	"fmt"
	"strings"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// chart carries a chart from a Helm repository or an OCI registry: chart,
// repoURL and targetRevision (a version or a range) keep their meaning.
// Argo CD writes an OCI Helm repository without a scheme
// (registry-1.docker.io/bitnamicharts, enableOCI on its repository Secret),
// keyless as oci://registry-1.docker.io/bitnamicharts; and Argo CD's OCI
// artifact source (oci://registry/path/chart with path ".") becomes the
// same chart.
func (c *converter) chart(src *kv1.ApplicationSource) error {
	src.Chart = c.str("chart")
	if src.Chart == "" {
		return c.ociArtifact(src)
	}
	if src.Path != "" {
		return fmt.Errorf("%s %q with chart %q: a chart from a repository is rendered whole; remove path (or chart, to render a folder of Git)", c.path("path"), src.Path, src.Chart)
	}
	switch {
	case strings.HasPrefix(src.RepoURL, "https://"), strings.HasPrefix(src.RepoURL, "http://"), strings.HasPrefix(src.RepoURL, "oci://"):
	case !strings.Contains(src.RepoURL, "://") && !strings.Contains(src.RepoURL, "@"):
		argo := src.RepoURL
		src.RepoURL = "oci://" + strings.TrimSuffix(argo, "/")
		c.warnf("%s %q is Argo CD's form of an OCI Helm repository (enableOCI on its repository Secret): written %s; the repository must be an OCI registry (for an HTTPS Helm repository write https://%s)", c.path("repoURL"), argo, src.RepoURL, argo)
	default:
		return fmt.Errorf("%s %q with chart %q: a chart comes from a Helm repository (https://) or an OCI registry (oci://)", c.path("repoURL"), src.RepoURL, src.Chart)
	}
	// Argo CD accepts chart: team/web under an OCI registry's root;
	// keyless names the chart alone and keeps the path in repoURL.
	if dir, name, ok := cutLast(src.Chart); ok && strings.HasPrefix(src.RepoURL, "oci://") {
		src.RepoURL, src.Chart = strings.TrimSuffix(src.RepoURL, "/")+"/"+dir, name
	}
	return nil
}

// ociArtifact converts Argo CD's OCI artifact source whose artifact is a
// Helm chart (repoURL oci://registry/path/chart, path "."): keyless reads
// an OCI artifact only as a chart, named in chart.
func (c *converter) ociArtifact(src *kv1.ApplicationSource) error {
	if !strings.HasPrefix(src.RepoURL, "oci://") {
		return nil
	}
	dir, name, ok := cutLast(strings.TrimSuffix(strings.TrimPrefix(src.RepoURL, "oci://"), "/"))
	if !ok || (src.Path != "" && src.Path != ".") {
		return fmt.Errorf("%s %q is an OCI artifact (with path %q): keyless reads OCI artifacts only as Helm charts, rendered whole; write repoURL oci://registry/path and chart NAME", c.path("repoURL"), src.RepoURL, src.Path)
	}
	argo := src.RepoURL
	src.RepoURL, src.Chart, src.Path = "oci://"+dir, name, ""
	c.warnf("%s %q (Argo CD's OCI artifact source) written as repoURL %s and chart %s: keyless reads it as a Helm chart and refuses any other artifact", c.path("repoURL"), argo, src.RepoURL, src.Chart)
	return nil
}

// cutLast splits p at its last slash.
func cutLast(p string) (dir, name string, ok bool) {
	i := strings.LastIndex(p, "/")
	if i <= 0 || i == len(p)-1 {
		return "", p, false
	}
	return p[:i], p[i+1:], true
}
