// Package ciissuer is a local OIDC issuer over HTTPS (its own CA) with
// discovery and JWKS, minting tokens with the claim sets GitLab (id_tokens)
// and GitHub Actions document — and deliberately bad ones — for tests and the
// demo. It is never a production identity provider.
package ciissuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a running OIDC issuer.
type Issuer struct {
	url    string
	caPEM  []byte
	key    *rsa.PrivateKey
	kid    string
	server *http.Server
	ln     net.Listener
	// Now is the clock used for iat/nbf/exp (tests inject one).
	Now func() time.Time
}

// Start serves discovery and JWKS on https://127.0.0.1:PORT (a free port).
func Start() (*Issuer, error) { return StartOn("127.0.0.1:0", false) }

// StartOn serves on addr (a loopback address); with mint, POST /mint issues
// tokens for the CLI's `keyless-dev dev-issuer token` (loopback, dev use only).
func StartOn(addr string, mint bool) (*Issuer, error) {
	if host, _, err := net.SplitHostPort(addr); err != nil || (host != "127.0.0.1" && host != "localhost") {
		return nil, fmt.Errorf("the dev issuer listens on loopback only (127.0.0.1:PORT), not %q", addr)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Minute)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyless ciissuer CA"},
		NotBefore: now, NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now, NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	signKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	is := &Issuer{
		url: "https://" + ln.Addr().String(), key: signKey, kid: "ciissuer-1", ln: ln, Now: time.Now,
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("/oauth/discovery/keys", is.jwks)
	mux.HandleFunc("/github/token", is.githubToken)
	if mint {
		mux.HandleFunc("/mint", is.mint)
	}
	is.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, TLSConfig: &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}},
	}}
	go func() { _ = is.server.ServeTLS(ln, "", "") }()
	return is, nil
}

// URL is the issuer URL (the iss claim).
func (is *Issuer) URL() string { return is.url }

// CAPEM is the CA certificate that signed the issuer's serving certificate.
func (is *Issuer) CAPEM() []byte { return is.caPEM }

// Stop shuts the server down.
func (is *Issuer) Stop() { _ = is.server.Close() }

func (is *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	writeJSON(w, map[string]any{
		"issuer": is.url, "jwks_uri": is.url + "/oauth/discovery/keys",
		"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (is *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	writeJSON(w, is.keySet())
}

func (is *Issuer) keySet() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &is.key.PublicKey, KeyID: is.kid, Algorithm: "RS256", Use: "sig"}}}
}

// JWKS returns the issuer's public keys as a JSON Web Key Set.
func (is *Issuer) JWKS() []byte {
	b, err := json.Marshal(is.keySet())
	if err != nil {
		panic(fmt.Sprintf("ciissuer: encoding the JWKS: %v", err))
	}
	return b
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b)
}

// GitHubRequestToken is the bearer the /github/token endpoint requires, as
// GitHub's ACTIONS_ID_TOKEN_REQUEST_TOKEN.
const GitHubRequestToken = "ciissuer-request-token"

// defaultGitHubJob is the job /github/token mints tokens for.
var defaultGitHubJob = GitHubJob{Repository: "myorg/myapp", RepositoryID: 99, Ref: "refs/heads/main", Environment: "production", Actor: "octocat", Workflow: ".github/workflows/deploy.yml"}

// GitHubRequestURL is what a job's ACTIONS_ID_TOKEN_REQUEST_URL would be.
func (is *Issuer) GitHubRequestURL() string { return is.url + "/github/token?api-version=2.0" }

// githubToken serves GitHub's token request: GET ?audience=A with the request bearer.
func (is *Issuer) githubToken(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+GitHubRequestToken {
		http.Error(w, "bad request token", http.StatusUnauthorized)
		return
	}
	job := defaultGitHubJob
	job.Audience = r.URL.Query().Get("audience")
	tok, err := is.Sign(GitHubClaims(job))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]string{"value": tok})
}

// MintRequest asks /mint for a token.
type MintRequest struct {
	GitLab *GitLabJob `json:"gitlab,omitempty"`
	GitHub *GitHubJob `json:"github,omitempty"`
	// ExpiredBy, when positive, backdates the token so it expired that long ago.
	ExpiredBy time.Duration `json:"expiredBy,omitempty"`
}

func (is *Issuer) mint(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var req MintRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var claims map[string]any
	switch {
	case req.GitLab != nil:
		claims = GitLabClaims(*req.GitLab)
	case req.GitHub != nil:
		claims = GitHubClaims(*req.GitHub)
	default:
		http.Error(w, "give gitlab or github", http.StatusBadRequest)
		return
	}
	signer := *is
	if req.ExpiredBy > 0 {
		signer.Now = func() time.Time { return time.Now().Add(-req.ExpiredBy - 5*time.Minute) }
	}
	tok, err := signer.Sign(claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]string{"token": tok})
}

// Sign signs claims (iss, iat, nbf and exp are filled in when missing: exp
// five minutes from now, as CI job tokens live with the job).
func (is *Issuer) Sign(claims map[string]any) (string, error) {
	return is.signWith(is.key, is.kid, claims)
}

func (is *Issuer) signWith(key *rsa.PrivateKey, kid string, claims map[string]any) (string, error) {
	c := map[string]any{}
	now := is.Now()
	c["iss"] = is.url
	c["iat"] = now.Unix()
	c["nbf"] = now.Add(-5 * time.Second).Unix()
	c["exp"] = now.Add(5 * time.Minute).Unix()
	for k, v := range claims {
		c[k] = v
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(c).Serialize()
}

// SignWithOtherKey signs with a key the JWKS does not publish (a forgery).
func (is *Issuer) SignWithOtherKey(claims map[string]any) (string, error) {
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	return is.signWith(other, is.kid, claims)
}

// Unsigned returns an "alg: none" token with claims.
func (is *Issuer) Unsigned(claims map[string]any) (string, error) {
	c := map[string]any{"iss": is.url, "iat": is.Now().Unix(), "exp": is.Now().Add(5 * time.Minute).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	enc := func(b []byte) string { return base64URL(b) }
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + ".", nil
}

func (is *Issuer) String() string { return fmt.Sprintf("ciissuer(%s)", is.url) }
