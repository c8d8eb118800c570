package devcli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/cli"
)

func newDevIssuerCommand(streams cli.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev-issuer",
		Short: "A local OIDC issuer that mints GitLab/GitHub-shaped CI tokens (for trying OIDC on make cluster)",
		Long: `Run a throwaway OIDC issuer on a loopback port, over HTTPS with its own CA, and mint
tokens with the claims GitLab CI and GitHub Actions put in theirs — to try keyless's
OIDC push path locally. Its keys live in memory and vanish when it stops. Never use
it outside a laptop or a test.`,
	}
	cmd.AddCommand(newDevIssuerUpCommand(streams), newDevIssuerTokenCommand(streams))
	return cmd
}

type devIssuerUpFlags struct {
	addr  string
	caOut string
}

func newDevIssuerUpCommand(streams cli.IOStreams) *cobra.Command {
	f := &devIssuerUpFlags{}
	cmd := &cobra.Command{
		Use:     "up --addr 127.0.0.1:9443 --ca-out ca.pem",
		Short:   "Run the issuer until Ctrl-C",
		Example: `  keyless-dev dev-issuer up --addr 127.0.0.1:9443 --ca-out /tmp/issuer-ca.pem`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			is, err := ciissuer.StartOn(f.addr, true)
			if err != nil {
				return err
			}
			defer is.Stop()
			if err := os.WriteFile(f.caOut, is.CAPEM(), 0o600); err != nil {
				return fmt.Errorf("--ca-out: %w", err)
			}
			_, _ = fmt.Fprintf(streams.Out, "issuer: %s\nca: %s\n", is.URL(), f.caOut)
			_, _ = fmt.Fprintln(streams.ErrOut, "minting with: keyless-dev dev-issuer token --issuer "+is.URL()+" --ca "+f.caOut+" …; Ctrl-C to stop")
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&f.addr, "addr", "127.0.0.1:9443", "loopback address to listen on")
	cmd.Flags().StringVar(&f.caOut, "ca-out", "dev-issuer-ca.pem", "where to write the issuer's CA certificate")
	return cmd
}

type devIssuerTokenFlags struct {
	issuer, ca                 string
	gitlab, github             string
	projectID                  int
	ref, environment, audience string
	unprotected                bool
	expired                    bool
}

func newDevIssuerTokenCommand(streams cli.IOStreams) *cobra.Command {
	f := &devIssuerTokenFlags{}
	cmd := &cobra.Command{
		Use:   "token --issuer URL --ca F (--gitlab PROJECT | --github REPO) --project-id N --audience A",
		Short: "Mint a CI job token from a running dev issuer",
		Example: `  keyless-dev dev-issuer token --issuer https://127.0.0.1:9443 --ca /tmp/issuer-ca.pem \
    --gitlab myorg/myapp --project-id 4242 --ref main --audience k8s-prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := ciissuer.MintRequest{}
			switch {
			case f.gitlab != "" && f.github == "":
				req.GitLab = &ciissuer.GitLabJob{ProjectPath: f.gitlab, ProjectID: f.projectID, Ref: f.ref, RefProtected: !f.unprotected,
					Environment: f.environment, Audience: f.audience, UserLogin: os.Getenv("USER"), PipelineID: 1}
			case f.github != "" && f.gitlab == "":
				ref := f.ref
				if !strings.HasPrefix(ref, "refs/") {
					ref = "refs/heads/" + ref
				}
				req.GitHub = &ciissuer.GitHubJob{Repository: f.github, RepositoryID: f.projectID, Ref: ref, Environment: f.environment, Audience: f.audience, Workflow: ".github/workflows/deploy.yml"}
			default:
				return errors.New("give exactly one of --gitlab PROJECT or --github REPO")
			}
			if f.expired {
				req.ExpiredBy = time.Minute
			}
			ca, err := os.ReadFile(f.ca)
			if err != nil {
				return fmt.Errorf("--ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(ca) {
				return fmt.Errorf("--ca %s: no PEM certificate", f.ca)
			}
			body, err := json.Marshal(req)
			if err != nil {
				return err
			}
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
			hreq, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, strings.TrimSuffix(f.issuer, "/")+"/mint", bytes.NewReader(body))
			if err != nil {
				return err
			}
			resp, err := client.Do(hreq)
			if err != nil {
				return fmt.Errorf("asking the dev issuer (is `keyless-dev dev-issuer up` running?): %w", err)
			}
			defer func() { _ = resp.Body.Close() }()
			out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("dev issuer: %s: %s", resp.Status, strings.TrimSpace(string(out)))
			}
			var res struct {
				Token string `json:"token"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				return err
			}
			_, err = fmt.Fprintln(streams.Out, res.Token)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.issuer, "issuer", "https://127.0.0.1:9443", "the dev issuer's URL")
	fl.StringVar(&f.ca, "ca", "dev-issuer-ca.pem", "the dev issuer's CA (from dev-issuer up --ca-out)")
	fl.StringVar(&f.gitlab, "gitlab", "", "GitLab project path: mint a GitLab id_token")
	fl.StringVar(&f.github, "github", "", "GitHub owner/repo: mint a GitHub Actions token")
	fl.IntVar(&f.projectID, "project-id", 0, "project_id / repository_id")
	fl.StringVar(&f.ref, "ref", "main", "branch")
	fl.StringVar(&f.environment, "environment", "", "deployment environment")
	fl.StringVar(&f.audience, "audience", "", "aud claim")
	fl.BoolVar(&f.unprotected, "unprotected", false, "GitLab: ref_protected false")
	fl.BoolVar(&f.expired, "expired", false, "mint an already expired token")
	return cmd
}
