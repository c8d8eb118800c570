package publish

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// RegistryOptions say how to reach the registry.
type RegistryOptions struct {
	// Username and Password log in to the registry (a CI job's registry
	// login, e.g. GitLab's CI_REGISTRY_USER/CI_REGISTRY_PASSWORD). Empty:
	// the Docker configuration's credential for the registry, if any.
	Username, Password string
	// AllowInsecureHTTP speaks plain HTTP to the registry (a loopback
	// registry in tests and demos only). Default false: TLS.
	AllowInsecureHTTP bool
	// NoDockerConfig leaves the Docker configuration unread (tests).
	NoDockerConfig bool
	// HTTPClient is the client under the registry client. Default: one
	// with the standard library's transport and oras-go's retries.
	HTTPClient *http.Client
}

// Repository is an oras-go client of ref's repository with o's credential
// (sent to ref's registry host only).
func (o RegistryOptions) Repository(ref Ref) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref.Repository)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref.URL(), err)
	}
	host := repo.Reference.Registry
	cred := auth.EmptyCredential
	var store credentials.Store
	switch {
	case o.Username != "" || o.Password != "":
		cred = auth.Credential{Username: o.Username, Password: o.Password}
	case !o.NoDockerConfig:
		if store, err = credentials.NewStoreFromDocker(credentials.StoreOptions{}); err != nil {
			return nil, fmt.Errorf("reading the Docker configuration for %s's credential: %w", host, err)
		}
	}
	client := o.HTTPClient
	if client == nil {
		client = retry.DefaultClient
	}
	repo.Client = &auth.Client{
		Client: client,
		Cache:  auth.NewCache(),
		Credential: func(ctx context.Context, hostport string) (auth.Credential, error) {
			if !strings.EqualFold(hostport, host) {
				return auth.EmptyCredential, nil // a token service elsewhere gets nothing
			}
			if store != nil {
				return credentials.Credential(store)(ctx, hostport)
			}
			return cred, nil
		},
	}
	repo.PlainHTTP = o.AllowInsecureHTTP
	return repo, nil
}
