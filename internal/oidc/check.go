package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"k8s.io/apiserver/pkg/apis/apiserver"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	tokenoidc "k8s.io/apiserver/plugin/pkg/authenticator/token/oidc"
	"sigs.k8s.io/yaml"
)

// CheckOptions configure Check.
type CheckOptions struct {
	// Config is the AuthenticationConfiguration (YAML) the apiserver uses.
	Config []byte
	// Token is the JWT to evaluate.
	Token string
	// JWKS, when set, holds the issuer's keys (offline); else the issuer's
	// discovery and JWKS are fetched (with the configured CA).
	JWKS []byte
	// Claims, instead of Token: evaluate the rules on these claims only,
	// without any signature (a dry run of the policy).
	Claims map[string]any
}

// CheckResult is the identity the apiserver would give the token.
type CheckResult struct {
	Issuer   string   `json:"issuer"`
	Username string   `json:"username"`
	UID      string   `json:"uid,omitempty"`
	Groups   []string `json:"groups"`
}

// ErrDenied is returned (wrapped, with the apiserver's reason) for a token
// the configuration does not accept.
var ErrDenied = errors.New("token denied")

// Check evaluates a token with the kube-apiserver's own OIDC authenticator
// (k8s.io/apiserver/plugin/pkg/authenticator/token/oidc), so the verdict and
// the failing rule's message are the apiserver's.
func Check(ctx context.Context, opts CheckOptions) (*CheckResult, error) {
	cfg := &apiserverv1.AuthenticationConfiguration{}
	if err := yaml.UnmarshalStrict(opts.Config, cfg); err != nil {
		return nil, fmt.Errorf("reading the AuthenticationConfiguration: %w", err)
	}
	token := opts.Token
	var keySet *staticKeySet
	if opts.Claims != nil {
		var err error
		if token, keySet, err = selfSigned(opts.Claims, cfg); err != nil {
			return nil, err
		}
	} else if opts.JWKS != nil {
		ks := jose.JSONWebKeySet{}
		if err := json.Unmarshal(opts.JWKS, &ks); err != nil {
			return nil, fmt.Errorf("reading the JWKS: %w", err)
		}
		keySet = &staticKeySet{keys: ks}
	}
	iss, err := unverifiedIssuer(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDenied, err)
	}
	for i := range cfg.JWT {
		if cfg.JWT[i].Issuer.URL != iss {
			continue
		}
		internal := apiserver.JWTAuthenticator{}
		if err := apiserverv1.Convert_v1_JWTAuthenticator_To_apiserver_JWTAuthenticator(&cfg.JWT[i], &internal, nil); err != nil {
			return nil, err
		}
		o := tokenoidc.Options{JWTAuthenticator: internal, SupportedSigningAlgs: []string{"RS256", "ES256", "RS384", "RS512", "ES384", "ES512", "PS256"}}
		if keySet != nil {
			o.KeySet = keySet
		} else if ca := cfg.JWT[i].Issuer.CertificateAuthority; ca != "" {
			o.CAContentProvider = staticCA(ca)
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		a, err := tokenoidc.New(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("the configuration for issuer %s is invalid: %w", iss, err)
		}
		if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
			return a.HealthCheck() == nil, nil
		}); err != nil {
			return nil, fmt.Errorf("could not load the keys of %s (discovery/JWKS): %w; pass --jwks to check offline", iss, a.HealthCheck())
		}
		resp, ok, err := a.AuthenticateToken(ctx, token)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDenied, err)
		}
		if !ok {
			return nil, fmt.Errorf("%w: not authenticated", ErrDenied)
		}
		return &CheckResult{Issuer: iss, Username: resp.User.GetName(), UID: resp.User.GetUID(), Groups: resp.User.GetGroups()}, nil
	}
	return nil, fmt.Errorf("%w: no jwt authenticator for issuer %q in the configuration", ErrDenied, iss)
}

func unverifiedIssuer(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWT (want header.payload.signature)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("not a JWT: %w", err)
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("not a JWT: %w", err)
	}
	return c.Iss, nil
}

// selfSigned signs claims with a throwaway key for a rules-only dry run; a
// missing iss is the configuration's only issuer, a missing exp one hour ahead.
func selfSigned(claims map[string]any, cfg *apiserverv1.AuthenticationConfiguration) (string, *staticKeySet, error) {
	c := map[string]any{}
	for k, v := range claims {
		c[k] = v
	}
	if _, ok := c["iss"]; !ok {
		if len(cfg.JWT) != 1 {
			return "", nil, errors.New("the claims have no iss and the configuration has several issuers")
		}
		c["iss"] = cfg.JWT[0].Issuer.URL
	}
	if _, ok := c["exp"]; !ok {
		c["exp"] = time.Now().Add(time.Hour).Unix()
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", nil, err
	}
	tok, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", nil, err
	}
	return tok, &staticKeySet{keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, Algorithm: "RS256"}}}}, nil
}

// staticKeySet verifies JWS signatures against fixed keys (go-oidc's KeySet).
type staticKeySet struct {
	keys jose.JSONWebKeySet
}

func (s *staticKeySet) VerifySignature(_ context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256})
	if err != nil {
		return nil, fmt.Errorf("malformed JWS: %w", err)
	}
	for _, k := range s.keys.Keys {
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("failed to verify signature: no key of the JWKS matches")
}

type staticCA string

func (c staticCA) CurrentCABundleContent() []byte { return []byte(c) }
