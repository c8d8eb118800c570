// Package helmrepo resolves and fetches Helm charts for the controller:
// from HTTPS Helm repositories (an index.yaml and .tgz files, as GitHub
// Pages or ChartMuseum serve them) and OCI registries (oci://), and a
// chart's dependencies as `helm dependency build` would. It runs in the
// controller, never in the render child (which is offline): the child is
// handed the archives on disk.
//
// The API:
//
//	f, err := helmrepo.New(helmrepo.Options{CacheDir: dir, Egress: egressOpts})
//	creds, err := helmrepo.CredentialsFromSecret(repoURL, secret) // or nil: anonymous
//	r, err := f.Resolve(ctx, helmrepo.ChartRef{RepoURL: repoURL, Chart: "nginx", Version: "^1.2"}, creds)
//	path, err := f.Fetch(ctx, r, creds)                      // the verified .tgz in the cache
//	deps, err := f.Dependencies(ctx, chartDir, credsForURL) // deps.Archives, deps.Resolved, deps.Warnings
//	f.Invalidate(repoURL)                                     // a webhook: revalidate the index now
//
// Resolve pins a chart to a version and a digest (the .tgz's sha256 from the
// index, or the OCI manifest's digest); Fetch downloads it once, verifies it
// against that digest (a *DigestError naming both digests otherwise) and
// keeps it in CacheDir/charts named by the digest.
//
// The rules, for input that a tenant may have crafted (the repository, its
// index, its registry, the chart's Chart.yaml and Chart.lock):
//
//   - Credentials go only to the hosts they are bound to (Credentials.Hosts,
//     from the Secret's keyless.dev/git-host annotation): one boundTransport
//     under every request drops an Authorization header for any other host,
//     so a chart URL of an index pointing elsewhere, a redirect, or a
//     registry's token service on another host get none (as Helm without
//     --pass-credentials).
//   - Nothing travels over plain http:// (repositories, chart URLs,
//     redirects, token services, plain-HTTP registries) without
//     Options.AllowInsecureHTTP (ErrInsecure).
//   - Connections follow the egress policy (internal/egress: no loopback,
//     link-local, metadata or --egress-deny-cidrs addresses).
//   - Sizes are bounded (Limits: index, chart archive compressed and
//     uncompressed, entries, manifest, tags, redirects, dependencies), a
//     *LimitError naming the Limits field; each call is bounded by
//     Options.Timeout and the caller's context.
//   - A Helm repository's index is downloaded once per IndexTTL per
//     (repository URL, credential), by one caller while the others wait for
//     it (singleflight), and revalidated with If-None-Match and
//     If-Modified-Since. Helm's own loader (pkg/repo) parses it once per
//     download into a compact table on disk (version, digest, URLs of every
//     chart); memory holds only the versions of the charts asked for.
//   - OCI charts are read with oras-go v2 (what Helm's registry client
//     uses underneath, but with a context and size limits), with Helm's
//     media types and tag rules (pkg/registry).
//   - Files are written 0600 in folders 0700 under CacheDir, through
//     temporary files renamed once verified; their names come from digests
//     only.
package helmrepo
