package oidc

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"sigs.k8s.io/yaml"
)

// Usernames returns the Kubernetes usernames a pipeline's tokens map to, one
// per ref (or the environment, for GitHub environments).
func (p *FederationPolicy) Usernames(pl Pipeline) []string {
	is := p.issuer(pl.Issuer)
	prefix := is.Name + ":"
	var out []string
	switch is.Provider {
	case ProviderGitHub:
		if pl.Environment != "" {
			return []string{prefix + "repo:" + pl.Project + ":environment:" + pl.Environment}
		}
		for _, r := range pl.Refs {
			out = append(out, prefix+"repo:"+pl.Project+":ref:"+fullRef(pl, r))
		}
	default: // GitLab's sub format; generic issuers are assumed to follow it
		for _, r := range pl.Refs {
			out = append(out, prefix+"project_path:"+pl.Project+":ref_type:"+refType(pl)+":ref:"+r)
		}
	}
	return out
}

func refType(pl Pipeline) string {
	if pl.RefType == "" {
		return "branch"
	}
	return pl.RefType
}

func fullRef(pl Pipeline, r string) string {
	if strings.HasPrefix(r, "refs/") {
		return r
	}
	if refType(pl) == "tag" {
		return "refs/tags/" + r
	}
	return "refs/heads/" + r
}

// celString quotes s as a CEL string literal.
func celString(s string) string { return strconv.Quote(s) }

func celList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = celString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// pipelineExpr is the CEL condition a token of pl must meet.
func pipelineExpr(provider string, pl Pipeline) string {
	var conds []string
	has := func(claim string) string { return "has(claims." + claim + ")" }
	switch provider {
	case ProviderGitHub:
		// sub becomes the username: pin its form to this repository.
		conds = append(conds, "claims.sub.startsWith("+celString("repo:"+pl.Project+":")+")")
		conds = append(conds, has("repository")+" && claims.repository == "+celString(pl.Project))
		if pl.ProjectID != "" {
			conds = append(conds, has("repository_id")+" && claims.repository_id == "+celString(pl.ProjectID))
		}
		if len(pl.Refs) > 0 {
			refs := make([]string, len(pl.Refs))
			for i, r := range pl.Refs {
				refs[i] = fullRef(pl, r)
			}
			conds = append(conds, has("ref")+" && claims.ref in "+celList(refs))
		}
		if pl.Environment != "" {
			conds = append(conds, has("environment")+" && claims.environment == "+celString(pl.Environment))
		}
	default:
		conds = append(conds, "claims.sub.startsWith("+celString("project_path:"+pl.Project+":")+")")
		conds = append(conds, has("project_path")+" && claims.project_path == "+celString(pl.Project))
		if pl.ProjectID != "" {
			conds = append(conds, has("project_id")+" && claims.project_id == "+celString(pl.ProjectID))
		}
		if len(pl.Refs) > 0 {
			conds = append(conds, has("ref_type")+" && claims.ref_type == "+celString(refType(pl)))
			conds = append(conds, has("ref")+" && claims.ref in "+celList(pl.Refs))
		}
		if pl.protectedOnly(provider) {
			conds = append(conds, has("ref_protected")+" && claims.ref_protected == \"true\"")
		}
		if pl.Environment != "" {
			conds = append(conds, has("environment")+" && claims.environment == "+celString(pl.Environment))
		}
	}
	return "(" + strings.Join(conds, " && ") + ")"
}

// AuthenticationConfiguration builds the apiserver.config.k8s.io/v1 config:
// one jwt entry per issuer, a claim rule that is the OR of its pipelines,
// username = "<issuer>:" + sub, no groups, and user rules refusing system:
// names and groups.
func (p *FederationPolicy) AuthenticationConfiguration() (*apiserverv1.AuthenticationConfiguration, error) {
	cfg := &apiserverv1.AuthenticationConfiguration{TypeMeta: metav1.TypeMeta{APIVersion: "apiserver.config.k8s.io/v1", Kind: "AuthenticationConfiguration"}}
	for _, is := range p.Issuers {
		var exprs []string
		for _, pl := range p.Pipelines {
			if pl.Issuer == is.Name {
				exprs = append(exprs, pipelineExpr(is.Provider, pl))
			}
		}
		if len(exprs) == 0 {
			continue
		}
		sort.Strings(exprs)
		jwt := apiserverv1.JWTAuthenticator{
			Issuer: apiserverv1.Issuer{URL: is.URL, Audiences: []string{is.Audience}, AudienceMatchPolicy: apiserverv1.AudienceMatchPolicyMatchAny},
			ClaimValidationRules: []apiserverv1.ClaimValidationRule{{
				Expression: strings.Join(exprs, " || "),
				Message:    "the token is not from a pipeline trusted by the keyless FederationPolicy (issuer " + is.Name + ")",
			}},
			ClaimMappings: apiserverv1.ClaimMappings{
				Username: apiserverv1.PrefixedClaimOrExpression{Expression: celString(is.Name+":") + " + claims.sub"},
				Groups:   apiserverv1.PrefixedClaimOrExpression{Expression: "[]"},
				UID:      apiserverv1.ClaimOrExpression{Expression: "claims.sub"},
			},
			UserValidationRules: []apiserverv1.UserValidationRule{
				{Expression: "!user.username.startsWith('system:')", Message: "usernames with the system: prefix are reserved"},
				{Expression: "user.groups.all(g, !g.startsWith('system:'))", Message: "groups with the system: prefix are reserved"},
			},
		}
		if is.DiscoveryURL != "" {
			d := is.DiscoveryURL
			jwt.Issuer.DiscoveryURL = &d
		}
		if is.CertificateAuthorityFile != "" {
			ca, err := os.ReadFile(is.CertificateAuthorityFile)
			if err != nil {
				return nil, fmt.Errorf("issuer %s: %w", is.Name, err)
			}
			jwt.Issuer.CertificateAuthority = string(ca)
		}
		cfg.JWT = append(cfg.JWT, jwt)
	}
	if len(cfg.JWT) == 0 {
		return nil, errNoPipelines
	}
	return cfg, nil
}

// AuthenticationConfigurationYAML renders AuthenticationConfiguration as YAML.
func (p *FederationPolicy) AuthenticationConfigurationYAML() ([]byte, error) {
	cfg, err := p.AuthenticationConfiguration()
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(cfg)
}
