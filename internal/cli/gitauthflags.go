package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/rollback"
)

// gitAuthFlags select a Git credential (a token or a deploy key, never a
// cluster one), for the commands that read or push Git: bump, rollback and
// history --changes.
type gitAuthFlags struct {
	tokenEnv       string
	tokenUsername  string
	sshKeyFile     string
	knownHostsFile string
	// For the commands that read an Application's own Git Secret and clone
	// its repository (rollback, history --changes): the controller's rules.
	allowInsecureHTTP bool
	gitTimeout        time.Duration
}

func (f *gitAuthFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&f.tokenEnv, "token-env", "", "environment variable holding an HTTPS token (CI_JOB_TOKEN, GITHUB_TOKEN, a project access token)")
	fl.StringVar(&f.tokenUsername, "token-username", "", "username sent with the token (default gitlab-ci-token for CI_JOB_TOKEN, x-access-token for GITHUB_TOKEN, else oauth2)")
	fl.StringVar(&f.sshKeyFile, "ssh-key", "", "SSH deploy key (a private key file) for ssh:// or user@host: repositories; the SSH user is the URL's (default git)")
	fl.StringVar(&f.knownHostsFile, "known-hosts", "", "known_hosts file for SSH (required with --ssh-key; unknown or changed host keys are refused)")
}

// addCloneFlags adds the flags of the commands that clone an
// Application's repository with its own Git Secret: the Secret goes only
// where the controller would send it, and the clone is bounded like its
// fetch.
func (f *gitAuthFlags) addCloneFlags(fl *pflag.FlagSet) {
	fl.BoolVar(&f.allowInsecureHTTP, "allow-insecure-http", false, "let the Application's Git Secret travel over plain http:// (loopback tests and demos only), as the controller's flag of that name")
	fl.DurationVar(&f.gitTimeout, "git-timeout", 60*time.Second, "bound on the clone of the repository (it may also bring at most 512 MiB)")
}

// cloneLimits bound the clone like the controller's fetch.
func (f *gitAuthFlags) cloneLimits() rollback.Limits { return rollback.Limits{Timeout: f.gitTimeout} }

// given reports whether a credential flag was set.
func (f *gitAuthFlags) given() bool { return f.tokenEnv != "" || f.sshKeyFile != "" }

// auth builds the Git credential from --token-env or --ssh-key (nil when
// neither is given).
func (f *gitAuthFlags) auth(getenv func(string) string) (transport.AuthMethod, error) {
	switch {
	case f.tokenEnv != "" && f.sshKeyFile != "":
		return nil, errors.New("--token-env and --ssh-key exclude each other")
	case f.tokenEnv != "":
		tok := getenv(f.tokenEnv)
		if tok == "" {
			return nil, fmt.Errorf("--token-env %s: the variable is empty or unset", f.tokenEnv)
		}
		user := f.tokenUsername
		if user == "" {
			switch strings.ToUpper(f.tokenEnv) {
			case "CI_JOB_TOKEN":
				user = "gitlab-ci-token"
			case "GITHUB_TOKEN", "GH_TOKEN":
				user = "x-access-token"
			default:
				user = "oauth2"
			}
		}
		return &githttp.BasicAuth{Username: user, Password: tok}, nil
	case f.sshKeyFile != "":
		key, err := os.ReadFile(f.sshKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--ssh-key: %w", err)
		}
		if f.knownHostsFile == "" {
			return nil, errors.New("--ssh-key needs --known-hosts: unknown SSH host keys are refused")
		}
		kh, err := os.ReadFile(f.knownHostsFile)
		if err != nil {
			return nil, fmt.Errorf("--known-hosts: %w", err)
		}
		return gitsource.SSHAuth("", key, "", kh)
	}
	return nil, nil
}

// commitSigner is the SSH signer of --sign-ssh-key (nil for "").
func commitSigner(keyFile string) (git.Signer, error) {
	if keyFile == "" {
		return nil, nil
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--sign-ssh-key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("--sign-ssh-key %s: not a usable private key (passphrase-protected keys are not supported)", keyFile)
	}
	return gitsource.SSHSigner{Signer: signer}, nil
}

// credential is --token-env or --ssh-key, else the Application's own Git
// Secret read with the caller's identity, else none.
func (f *gitAuthFlags) credential(ctx context.Context, c client.Client, app *kv1.Application, getenv func(string) string) (transport.AuthMethod, error) {
	if f.given() || app.Spec.Source.SecretRef == nil {
		return f.auth(getenv)
	}
	ref := app.Spec.Source.SecretRef.Name
	// The controller's rule: a Secret labelled as a Git credential, bound to
	// the repoURL's host, never over plain http://. An Application whose
	// repoURL an editor pointed elsewhere does not get its Secret sent there
	// by whoever investigates it.
	if err := credential.CheckEmbedded(app.Spec.Source.RepoURL, f.allowInsecureHTTP); err != nil {
		return nil, err
	}
	s, err := credential.Get(ctx, c, app.Namespace, ref, credential.Git, "spec.source.secretRef", app.Spec.Source.RepoURL, f.allowInsecureHTTP)
	if err != nil {
		return nil, fmt.Errorf("%w (or pass --token-env or --ssh-key)", err)
	}
	auth, err := gitsource.AuthFromSecret(app.Spec.Source.RepoURL, s.Data)
	if err != nil {
		return nil, fmt.Errorf("git secret %s/%s: %w", app.Namespace, ref, err)
	}
	return auth, nil
}
