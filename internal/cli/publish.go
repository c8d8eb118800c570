package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/publish"
)

// registryFlags are the registry login of publish and bump --artifact.
type registryFlags struct {
	username          string
	passwordStdin     bool
	passwordEnv       string
	allowInsecureHTTP bool
}

func (f *registryFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&f.username, "username", "", "registry user (default: GitLab's CI_REGISTRY_USER for $CI_REGISTRY, else the Docker configuration's credential)")
	fl.BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password (or token) from stdin")
	fl.StringVar(&f.passwordEnv, "password-env", "", "read the registry password (or token) from this environment variable (e.g. GITHUB_TOKEN)")
	fl.BoolVar(&f.allowInsecureHTTP, "allow-insecure-http", false, "speak plain HTTP to the registry (a loopback registry in tests and demos only)")
}

// options turns the flags into the registry options for ref, with GitLab's
// job registry login when ref is on $CI_REGISTRY.
func (f *registryFlags) options(streams IOStreams, ref publish.Ref) (publish.RegistryOptions, error) {
	o := publish.RegistryOptions{Username: f.username, AllowInsecureHTTP: f.allowInsecureHTTP}
	switch {
	case f.passwordStdin && f.passwordEnv != "":
		return o, errors.New("give --password-stdin or --password-env, not both")
	case f.passwordStdin:
		b, err := io.ReadAll(io.LimitReader(streams.In, 64<<10))
		if err != nil {
			return o, fmt.Errorf("reading the password from stdin: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	case f.passwordEnv != "":
		if o.Password = streams.getenv(f.passwordEnv); o.Password == "" {
			return o, fmt.Errorf("--password-env %s: the variable is empty or unset", f.passwordEnv)
		}
	case f.username == "" && streams.getenv("CI_REGISTRY") != "" && strings.HasPrefix(ref.Repository, streams.getenv("CI_REGISTRY")+"/"):
		o.Username, o.Password = streams.getenv("CI_REGISTRY_USER"), streams.getenv("CI_REGISTRY_PASSWORD")
	}
	if o.Password != "" && o.Username == "" {
		o.Username = "keyless" // registries taking a token accept any user name
	}
	return o, nil
}

type publishFlags struct {
	source, revision string
	annotations      []string
	created          string
	output           string
	registryFlags
	signFlags
}

// signFlags say how keyless publish signs.
type signFlags struct {
	sign           bool
	keyFile        string
	keyPasswordEnv string
	fulcioURL      string
	timestampURL   string
	rekorURL       string
	provider       string
	tokenEnv       string
}

// Sigstore's public instance: the default of keyless signing.
const (
	publicFulcio    = "https://fulcio.sigstore.dev"
	publicTimestamp = "https://timestamp.sigstore.dev/api/v1/timestamp"
	publicRekor     = "https://rekor.sigstore.dev"
)

func (f *signFlags) addFlags(fl *pflag.FlagSet) {
	fl.BoolVar(&f.sign, "sign", false, "sign the artifact keylessly with the CI job's OIDC token (audience sigstore): Fulcio certifies the pipeline")
	fl.StringVar(&f.keyFile, "key", "", "sign with this private key instead (PEM; cosign generate-key-pair's encrypted one too)")
	fl.StringVar(&f.keyPasswordEnv, "key-password-env", "COSIGN_PASSWORD", "environment variable holding --key's password")
	fl.StringVar(&f.fulcioURL, "fulcio-url", publicFulcio, "Fulcio that certifies the pipeline (a private one for air-gapped clusters)")
	fl.StringVar(&f.timestampURL, "timestamp-url", publicTimestamp, "RFC 3161 timestamp authority (\"\" for none)")
	fl.StringVar(&f.rekorURL, "rekor-url", publicRekor, "Rekor transparency log to record the signature in (\"\" for none: then the verifier must skip the log)")
	fl.StringVar(&f.provider, "provider", "auto", "CI platform of the token: gitlab (an id_tokens variable), github (requested now) or auto")
	fl.StringVar(&f.tokenEnv, "token-env", "SIGSTORE_ID_TOKEN", "GitLab: the id_tokens variable holding the token (aud: sigstore)")
}

// options are the signing options, nil when not signing.
func (f *signFlags) options(cmd *cobra.Command, streams IOStreams) (*artifactsign.SignOptions, error) {
	if !f.sign && f.keyFile == "" {
		return nil, nil
	}
	o := &artifactsign.SignOptions{RekorURL: f.rekorURL}
	if f.keyFile != "" {
		if f.sign {
			return nil, errors.New("--sign signs keylessly, --key with a key: give one")
		}
		pemBytes, err := os.ReadFile(f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		if o.Key, err = artifactsign.LoadPrivateKey(pemBytes, []byte(streams.getenv(f.keyPasswordEnv))); err != nil {
			return nil, fmt.Errorf("--key %s: %w", f.keyFile, err)
		}
		return o, nil
	}
	src := oidc.TokenSource{Provider: f.provider, Audience: oidc.SigstoreAudience, FromEnv: f.tokenEnv, Getenv: streams.getenv}
	tok, err := src.Token(cmd.Context())
	if err != nil {
		return nil, fmt.Errorf("--sign needs the CI job's OIDC token of audience %s (GitLab: id_tokens: {%s: {aud: %s}}; GitHub: permissions: id-token: write): %w",
			oidc.SigstoreAudience, f.tokenEnv, oidc.SigstoreAudience, err)
	}
	o.IDToken, o.FulcioURL = tok, f.fulcioURL
	if f.timestampURL != "" {
		o.TimestampURLs = []string{f.timestampURL}
	}
	return o, nil
}

func newPublishCommand(streams IOStreams) *cobra.Command {
	f := &publishFlags{}
	cmd := &cobra.Command{
		Use:   "publish DIR oci://REGISTRY/REPOSITORY:TAG",
		Short: "Pack a folder of manifests as an OCI artifact (Flux's format) and push it",
		Long: `The CI step of the Gitless path: the cluster pulls from a registry it trusts,
never from Git. publish packs DIR (a plain folder, a kustomization or a chart) as
an OCI artifact in the format of 'flux push artifact' and pushes it as TAG; an
Application with spec.source.repoURL oci://REGISTRY/REPOSITORY deploys it.

The pack is reproducible: the same files give the same bytes and the same digest
(names in order, no owners or times, modes 0644/0755; .git left out; a symlink to
a file inside DIR is packed as a copy, since Flux unpacks no symlinks). The
manifest records where the folder came from: org.opencontainers.image.source and
.revision (main@sha1:<commit>, as Flux writes it) and dev.keyless.pipeline (the
CI job), from GitLab's or GitHub's environment, else from DIR's Git checkout.
org.opencontainers.image.created is written only from --created or
SOURCE_DATE_EPOCH, so that it does not change the digest by itself.

The registry login is --username with --password-stdin or --password-env; in
GitLab CI, a push to $CI_REGISTRY uses the job's CI_REGISTRY_USER and
CI_REGISTRY_PASSWORD; otherwise the Docker configuration (docker login,
credential helpers). The credential goes to the registry's host only. It prints
the pushed reference with its digest (oci://…:TAG@sha256:…), or JSON with -o json.

--sign signs the artifact keylessly, as cosign v3 does (a Sigstore bundle stored
as an OCI referrer): the CI job's OIDC token of audience sigstore (GitLab: an
id_tokens variable, SIGSTORE_ID_TOKEN by default; GitHub: requested with
id-token: write) is exchanged at Fulcio for a certificate naming the pipeline
(repository, ref, commit, run), timestamped and recorded in Rekor (Sigstore's
public instance by default; --fulcio-url, --timestamp-url, --rekor-url for a
private one). --key signs with a key instead (cosign generate-key-pair's, its
password in COSIGN_PASSWORD). The controller verifies before anything is fetched.`,
		Example: `  # GitLab CI: publish the folder to the project's registry with the job's login
  keyless publish deploy/ oci://$CI_REGISTRY_IMAGE/manifests:$CI_COMMIT_SHORT_SHA

  # GitHub Actions: to ghcr.io with the workflow's token
  keyless publish deploy/ oci://ghcr.io/myorg/myapp-manifests:${GITHUB_SHA::7} \
    --username "$GITHUB_ACTOR" --password-env GITHUB_TOKEN

  # GitLab CI, signed keylessly: the job declares
  #   id_tokens: {SIGSTORE_ID_TOKEN: {aud: sigstore}}
  keyless publish deploy/ oci://$CI_REGISTRY_IMAGE/manifests:$CI_COMMIT_SHORT_SHA --sign

  # then deploy it: the Application reads the artifact
  #   spec.source: {repoURL: oci://ghcr.io/myorg/myapp-manifests, targetRevision: latest}
  # and promote an artifact by moving a tag (no Git commit)
  keyless bump --artifact oci://ghcr.io/myorg/myapp-manifests:abc1234 --tag production`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPublish(cmd, streams, f, args[0], args[1])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.source, "source", "", "URL of the repository DIR comes from (default: the CI project's, else DIR's Git remote origin)")
	fl.StringVar(&f.revision, "revision", "", "source revision, e.g. main@sha1:<commit> (default: the CI job's, else DIR's Git HEAD)")
	fl.StringArrayVarP(&f.annotations, "annotation", "a", nil, "KEY=VALUE annotation of the manifest (repeatable)")
	fl.StringVar(&f.created, "created", "", "creation time, RFC 3339 (default: SOURCE_DATE_EPOCH, else none)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text (the reference with its digest) or json")
	f.registryFlags.addFlags(fl)
	f.signFlags.addFlags(fl)
	return cmd
}

func runPublish(cmd *cobra.Command, streams IOStreams, f *publishFlags, dir, target string) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	ref, err := publish.ParseRef(target)
	if err != nil {
		return err
	}
	opts := publish.Options{Dir: dir, Ref: ref, Annotations: map[string]string{}}
	for _, a := range f.annotations {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return fmt.Errorf("--annotation %q: want KEY=VALUE", a)
		}
		opts.Annotations[k] = v
	}
	fromGit, err := publish.OriginFromGit(dir)
	if err != nil {
		return err
	}
	origin := publish.Origin{Source: f.source, Revision: f.revision}.Or(publish.OriginFromCIEnv(streams.getenv)).Or(fromGit)
	opts.Source, opts.Revision, opts.Pipeline = origin.Source, origin.Revision, origin.Pipeline
	if f.created != "" {
		if opts.Created, err = time.Parse(time.RFC3339, f.created); err != nil {
			return fmt.Errorf("--created: %w", err)
		}
	} else if opts.Created, err = publish.CreatedFromEnv(streams.getenv); err != nil {
		return err
	}
	if opts.Registry, err = f.registryFlags.options(streams, ref); err != nil {
		return err
	}
	if opts.Sign, err = f.signFlags.options(cmd, streams); err != nil {
		return err
	}
	res, err := publish.Run(cmd.Context(), opts)
	if err != nil {
		return err
	}
	if f.output == "json" {
		return writeJSON(streams.Out, res)
	}
	_, _ = fmt.Fprintf(streams.ErrOut, "published %s (%d bytes) from %s %s\n", dir, res.Size, orNone(opts.Source), orNone(opts.Revision))
	if s := res.Signature; s != nil {
		_, _ = fmt.Fprintf(streams.ErrOut, "signed (%s) as %s\n", orNone(s.Certificate+s.KeyID), s.Referrer)
	}
	_, _ = fmt.Fprintln(streams.Out, res.URL)
	return nil
}

// orNone is s, or "(none)".
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
