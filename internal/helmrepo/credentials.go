package helmrepo

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
)

// Credentials authenticate to a Helm repository or OCI registry. They are
// sent only to the hosts they are bound to: a request to any other host
// (a chart URL of an index on another host, a redirect, a registry's token
// service elsewhere) goes without them.
type Credentials struct {
	// Username and Password: HTTP basic auth (a Helm repository), or the
	// registry login exchanged for a token (an OCI registry).
	Username, Password string
	// Token is sent as "Authorization: Bearer" (a Helm repository), or used
	// as the registry's access token (an OCI registry).
	Token string
	// Hosts are the hosts the credential may be sent to, each host (any
	// port) or host:port, as in the keyless.dev/git-host annotation.
	Hosts []string
}

// allows reports whether c may be sent to host (host[:port]).
func (c *Credentials) allows(host string) bool {
	if c == nil || len(c.Hosts) == 0 {
		return false
	}
	return credential.HostAllowed(strings.Join(c.Hosts, ","), strings.ToLower(host))
}

// fingerprint identifies c in cache keys (never printed).
func (c *Credentials) fingerprint() string {
	if c == nil {
		return "anonymous"
	}
	h := sha256.New()
	for _, s := range append([]string{c.Username, c.Password, c.Token}, c.Hosts...) {
		_, _ = fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// secretField names the field of an Application that refers to a
// repository credential, in errors.
const secretField = "spec.source.secretRef"

// CredentialsFromSecret turns a tenant's Secret into Credentials for
// repoURL (https://… or oci://…). The Secret must pass credential.Check
// for credential.Helm: labelled keyless.dev/credential: helm and annotated
// keyless.dev/git-host with repoURL's host (the Fetcher itself refuses
// plain http:// without Options.AllowInsecureHTTP, with or without a
// credential). It is either
//   - a kubernetes.io/dockerconfigjson Secret: only the auths entry of
//     repoURL's host (host[:port] exactly) is used, bound to that host alone;
//   - or any other type (Opaque, kubernetes.io/basic-auth) holding
//     username and password, or token: bound to the annotation's hosts.
//
// Errors wrap credential.ErrRefused (not labelled or bound) or
// ErrCredential (nothing usable in it).
func CredentialsFromSecret(repoURL string, s *corev1.Secret) (*Credentials, error) {
	if err := credential.Check(s, credential.Helm, secretField, repoURL, true); err != nil {
		return nil, err
	}
	id := s.Namespace + "/" + s.Name
	if s.Type == corev1.SecretTypeDockerConfigJson {
		host, _ := credential.Host(repoURL)
		return dockerCredentials(id, host, s.Data[corev1.DockerConfigJsonKey])
	}
	c := &Credentials{
		Username: string(s.Data[corev1.BasicAuthUsernameKey]),
		Password: string(s.Data[corev1.BasicAuthPasswordKey]),
		Token:    string(s.Data["token"]),
	}
	for _, h := range strings.Split(s.Annotations[kv1.GitHostAnnotation], ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			c.Hosts = append(c.Hosts, h)
		}
	}
	if c.Token == "" && (c.Username == "" || c.Password == "") {
		return nil, fmt.Errorf("secret %s (%s) holds neither username and password nor token: %w", id, secretField, ErrCredential)
	}
	return c, nil
}

// dockerConfig is the part of a .dockerconfigjson keyless reads.
type dockerConfig struct {
	Auths map[string]struct {
		Username      string `json:"username"`
		Password      string `json:"password"`
		Auth          string `json:"auth"`
		RegistryToken string `json:"registrytoken"`
	} `json:"auths"`
}

// dockerCredentials returns the auth of host from a .dockerconfigjson.
func dockerCredentials(id, host string, data []byte) (*Credentials, error) {
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("secret %s (%s): %s is not a Docker config: %w (%w)", id, secretField, corev1.DockerConfigJsonKey, ErrCredential, err)
	}
	for key, a := range cfg.Auths {
		if registryHost(key) != host {
			continue
		}
		c := &Credentials{Username: a.Username, Password: a.Password, Token: a.RegistryToken, Hosts: []string{host}}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("secret %s (%s): the auth of %s is not base64: %w", id, secretField, key, ErrCredential)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("secret %s (%s): the auth of %s is not user:password: %w", id, secretField, key, ErrCredential)
			}
			c.Username, c.Password = user, pass
		}
		if c.Token == "" && (c.Username == "" || c.Password == "") {
			return nil, fmt.Errorf("secret %s (%s): the auths entry of %s holds no login: %w", id, secretField, key, ErrCredential)
		}
		return c, nil
	}
	return nil, fmt.Errorf("secret %s (%s) has no auths entry for %s (the registry of spec.source.repoURL): %w", id, secretField, host, ErrCredential)
}

// registryHost returns the lower-case host[:port] of a Docker config key
// ("host", "https://host/v1/", "host/path").
func registryHost(key string) string {
	if strings.Contains(key, "://") {
		if u, err := url.Parse(key); err == nil {
			return strings.ToLower(u.Host)
		}
		return ""
	}
	h, _, _ := strings.Cut(key, "/")
	return strings.ToLower(h)
}
