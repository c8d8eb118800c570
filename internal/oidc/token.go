package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenSource options: where a CI job's token comes from.
type TokenSource struct {
	// Provider is gitlab, github or auto (github when GITHUB_ACTIONS is set).
	Provider string
	// FromEnv names the variable holding a GitLab id_token (default K8S_TOKEN).
	FromEnv string
	// Audience is requested from GitHub (required there).
	Audience string
	// Getenv reads the environment (os.Getenv).
	Getenv func(string) string
	// HTTPClient requests GitHub's token (default http.DefaultClient).
	HTTPClient *http.Client
}

// Token returns the job's current token. GitHub's is requested now, so a
// long job never holds an expired one.
func (s TokenSource) Token(ctx context.Context) (string, error) {
	provider := s.Provider
	if provider == "" || provider == "auto" {
		provider = ProviderGitLab
		if s.Getenv("GITHUB_ACTIONS") != "" {
			provider = ProviderGitHub
		}
	}
	switch provider {
	case ProviderGitLab:
		name := s.FromEnv
		if name == "" {
			name = "K8S_TOKEN"
		}
		tok := strings.TrimSpace(s.Getenv(name))
		if tok == "" {
			return "", fmt.Errorf("$%s is empty: declare it in the job's id_tokens (with the policy's audience as aud)", name)
		}
		return tok, nil
	case ProviderGitHub:
		reqURL, reqTok := s.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), s.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
		if reqURL == "" || reqTok == "" {
			return "", errors.New("ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are not set: give the job `permissions: id-token: write`")
		}
		if s.Audience == "" {
			return "", errors.New("--audience is required for GitHub (the policy issuer's audience)")
		}
		u, err := url.Parse(reqURL)
		if err != nil {
			return "", fmt.Errorf("ACTIONS_ID_TOKEN_REQUEST_URL: %w", err)
		}
		q := u.Query()
		q.Set("audience", s.Audience)
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+reqTok)
		client := s.HTTPClient
		if client == nil {
			client = http.DefaultClient
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", fmt.Errorf("requesting the GitHub OIDC token: %w", err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("requesting the GitHub OIDC token: %s", resp.Status)
		}
		var out struct {
			Value string `json:"value"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.Value == "" {
			return "", errors.New("requesting the GitHub OIDC token: no token in the answer")
		}
		return out.Value, nil
	}
	return "", fmt.Errorf("--provider %q: want gitlab, github or auto", s.Provider)
}

// Expiry reads a JWT's exp claim (unverified: the apiserver verifies).
func Expiry(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("not a JWT: %w", err)
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Exp == 0 {
		return time.Time{}, errors.New("the token has no exp claim")
	}
	return time.Unix(c.Exp, 0).UTC(), nil
}

// ExecCredential is the client.authentication.k8s.io/v1 object kubectl's exec
// plugins print.
func ExecCredential(token string) ([]byte, error) {
	status := map[string]any{"token": token}
	if exp, err := Expiry(token); err == nil {
		status["expirationTimestamp"] = exp.Format(time.RFC3339)
	}
	return json.Marshal(map[string]any{
		"apiVersion": "client.authentication.k8s.io/v1",
		"kind":       "ExecCredential",
		"status":     status,
	})
}

// describeToken says, from a refused JWT's unverified claims, what is most
// likely wrong: that it expired, else which issuer, audience and subject it
// names, for comparing with the policy. Never the token itself.
func describeToken(token string, now time.Time) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ": it is not a JWT"
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ": it is not a JWT"
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud any    `json:"aud"`
		Exp int64  `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ": it is not a JWT"
	}
	if c.Exp != 0 && now.After(time.Unix(c.Exp, 0)) {
		exp := time.Unix(c.Exp, 0).UTC()
		return fmt.Sprintf(": the token expired at %s, %s ago — CI tokens live minutes: request a new one in this job, never store one", exp.Format(time.RFC3339), now.Sub(exp).Round(time.Second))
	}
	return fmt.Sprintf(" (token for sub %q, aud %v, iss %q)", c.Sub, c.Aud, c.Iss)
}
