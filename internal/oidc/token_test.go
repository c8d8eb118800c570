package oidc

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/ciissuer"
)

func TestTokenSources(t *testing.T) {
	is, err := ciissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer is.Stop()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(is.CAPEM())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	env := map[string]string{
		"GITHUB_ACTIONS":                 "true",
		"ACTIONS_ID_TOKEN_REQUEST_URL":   is.GitHubRequestURL(),
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": ciissuer.GitHubRequestToken,
	}
	getenv := func(k string) string { return env[k] }

	tok, err := TokenSource{Provider: "auto", Audience: "k8s-prod", Getenv: getenv, HTTPClient: client}.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	if claims["aud"] != "k8s-prod" || claims["sub"] != "repo:myorg/myapp:environment:production" {
		t.Fatalf("GitHub token claims: %v", claims)
	}
	exp, err := Expiry(tok)
	if err != nil || exp.Before(time.Now()) {
		t.Fatalf("expiry %v %v", exp, err)
	}
	cred, err := ExecCredential(tok)
	if err != nil || !strings.Contains(string(cred), `"kind":"ExecCredential"`) || !strings.Contains(string(cred), `"expirationTimestamp":"`+exp.Format(time.RFC3339)+`"`) {
		t.Fatalf("exec credential %s %v", cred, err)
	}

	if _, err := (TokenSource{Provider: "github", Getenv: getenv, HTTPClient: client}).Token(t.Context()); err == nil || !strings.Contains(err.Error(), "--audience") {
		t.Errorf("GitHub without audience: %v", err)
	}
	env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "wrong"
	if _, err := (TokenSource{Provider: "github", Audience: "a", Getenv: getenv, HTTPClient: client}).Token(t.Context()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("GitHub with a wrong request token: %v", err)
	}
	delete(env, "ACTIONS_ID_TOKEN_REQUEST_URL")
	if _, err := (TokenSource{Provider: "github", Audience: "a", Getenv: getenv}).Token(t.Context()); err == nil || !strings.Contains(err.Error(), "id-token: write") {
		t.Errorf("GitHub without the request variables: %v", err)
	}

	env = map[string]string{"K8S_TOKEN": "  a.b.c \n"}
	if tok, err := (TokenSource{Provider: "auto", Getenv: getenv}).Token(t.Context()); err != nil || tok != "a.b.c" {
		t.Errorf("GitLab id_tokens: %q %v", tok, err)
	}
	if _, err := (TokenSource{Provider: "gitlab", FromEnv: "MISSING", Getenv: getenv}).Token(t.Context()); err == nil || !strings.Contains(err.Error(), "$MISSING") {
		t.Errorf("GitLab without the variable: %v", err)
	}
}

func TestDescribeToken(t *testing.T) {
	enc := func(claims string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
	}
	now := time.Unix(10_000, 0)
	if got := describeToken(enc(`{"exp":9000,"sub":"x"}`), now); !strings.Contains(got, "expired") || !strings.Contains(got, "16m40s ago") {
		t.Errorf("expired: %q", got)
	}
	got := describeToken(enc(`{"exp":20000,"sub":"project_path:a/b:ref_type:branch:ref:feature/x","aud":"k8s","iss":"https://gitlab.example.com"}`), now)
	if !strings.Contains(got, "ref:feature/x") || !strings.Contains(got, "aud k8s") || strings.Contains(got, "c2ln") {
		t.Errorf("valid-looking: %q", got)
	}
	if got := describeToken("nope", now); got != ": it is not a JWT" {
		t.Errorf("garbage: %q", got)
	}
}
