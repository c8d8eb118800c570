package oidc

import (
	"fmt"
	"strings"
)

// EKSIdentityProvider is what `aws eks associate-identity-provider-config
// --oidc` accepts, for one issuer.
type EKSIdentityProvider struct {
	IdentityProviderConfigName string            `json:"identityProviderConfigName"`
	IssuerURL                  string            `json:"issuerUrl"`
	ClientID                   string            `json:"clientId"`
	UsernameClaim              string            `json:"usernameClaim"`
	UsernamePrefix             string            `json:"usernamePrefix"`
	RequiredClaims             map[string]string `json:"requiredClaims,omitempty"`
}

// EKS returns, per issuer, the EKS identity provider config closest to the
// policy, and the list of what EKS cannot express (it allows exact-match
// required claims only: no OR across pipelines, no lists of refs, no rule
// on sub's form, no user validation rules).
func (p *FederationPolicy) EKS() ([]EKSIdentityProvider, []string) {
	var out []EKSIdentityProvider
	var lost []string
	for _, is := range p.Issuers {
		var pls []Pipeline
		for _, pl := range p.Pipelines {
			if pl.Issuer == is.Name {
				pls = append(pls, pl)
			}
		}
		cfg := EKSIdentityProvider{IdentityProviderConfigName: "keyless-" + is.Name, IssuerURL: is.URL, ClientID: is.Audience,
			UsernameClaim: "sub", UsernamePrefix: is.Name + ":"}
		if is.CertificateAuthorityFile != "" {
			lost = append(lost, fmt.Sprintf("issuer %s: EKS needs a publicly trusted issuer certificate (certificateAuthorityFile cannot be used)", is.Name))
		}
		if len(pls) != 1 {
			lost = append(lost, fmt.Sprintf("issuer %s: %d pipelines; EKS required claims cannot express an OR, so no pipeline rule is set: every token of this issuer and audience authenticates and only the RoleBindings limit it", is.Name, len(pls)))
			out = append(out, cfg)
			continue
		}
		pl := pls[0]
		req := map[string]string{}
		switch is.Provider {
		case ProviderGitHub:
			req["repository"] = pl.Project
			if pl.ProjectID != "" {
				req["repository_id"] = pl.ProjectID
			}
			if pl.Environment != "" {
				req["environment"] = pl.Environment
			}
			if len(pl.Refs) == 1 {
				req["ref"] = fullRef(pl, pl.Refs[0])
			}
		default:
			req["project_path"] = pl.Project
			if pl.ProjectID != "" {
				req["project_id"] = pl.ProjectID
			}
			if len(pl.Refs) == 1 {
				req["ref"] = pl.Refs[0]
				req["ref_type"] = refType(pl)
			}
			if pl.protectedOnly(is.Provider) {
				req["ref_protected"] = "true"
			}
			if pl.Environment != "" {
				req["environment"] = pl.Environment
			}
		}
		if len(pl.Refs) > 1 {
			lost = append(lost, fmt.Sprintf("issuer %s: refs %s: EKS cannot require one of several values; no ref rule is set", is.Name, strings.Join(pl.Refs, ", ")))
		}
		cfg.RequiredClaims = req
		out = append(out, cfg)
	}
	lost = append(lost, "EKS has no user validation rules: the username prefix alone keeps tokens from becoming system: users", "EKS cannot pin the form of sub (the username)")
	return out, lost
}
