// Package oidc turns one FederationPolicy file into what the API server needs
// to trust CI job tokens (an AuthenticationConfiguration with CEL rules) and
// the namespaced RBAC that grants exactly one pipeline identity a small Role.
package oidc

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Providers of CI tokens.
const (
	ProviderGitLab  = "gitlab"
	ProviderGitHub  = "github"
	ProviderGeneric = "generic"
)

// FederationPolicy declares the CI issuers the cluster trusts and the
// pipelines allowed to deploy.
type FederationPolicy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Issuers    []Issuer   `json:"issuers"`
	Pipelines  []Pipeline `json:"pipelines"`
	// Artifacts configures the pull path's rule: which signatures of an
	// OCI artifact deployed into a pipeline's namespace are accepted.
	Artifacts *ArtifactRules `json:"artifacts,omitempty"`
}

// ArtifactRules configure the verification of signed artifacts.
type ArtifactRules struct {
	// TransparencyLog is Required (default: a Rekor entry must prove each
	// signature) or Skip (air-gapped: a timestamp from a trusted timestamp
	// authority instead).
	TransparencyLog string `json:"transparencyLog,omitempty"`
}

// SkipTransparencyLog reports whether the policy accepts signatures
// without a transparency-log entry.
func (p *FederationPolicy) SkipTransparencyLog() bool {
	return p.Artifacts != nil && p.Artifacts.TransparencyLog == "Skip"
}

// Issuer is one CI platform's token issuer.
type Issuer struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	URL      string `json:"url"`
	Audience string `json:"audience"`
	// CertificateAuthorityFile (PEM) for self-hosted issuers behind a private CA.
	CertificateAuthorityFile string `json:"certificateAuthorityFile,omitempty"`
	// DiscoveryURL when discovery is not under URL.
	DiscoveryURL string `json:"discoveryURL,omitempty"`
}

// Pipeline is one trusted pipeline identity.
type Pipeline struct {
	Issuer string `json:"issuer"`
	// Project is GitLab's project_path or GitHub's owner/repo.
	Project string `json:"project"`
	// ProjectID is the immutable project (GitLab project_id) or repository
	// (GitHub repository_id) id: a deleted and re-created project with the same
	// path does not inherit the trust.
	ProjectID string `json:"projectID,omitempty"`
	// WaiveProjectID explicitly accepts pinning by path only.
	WaiveProjectID bool `json:"waiveProjectID,omitempty"`
	// Refs are branch (or tag, with refType: tag) names.
	Refs    []string `json:"refs,omitempty"`
	RefType string   `json:"refType,omitempty"`
	// ProtectedOnly requires GitLab's ref_protected == "true". Default true for GitLab.
	ProtectedOnly *bool `json:"protectedOnly,omitempty"`
	// Environment requires a deployment environment (GitLab/GitHub environment).
	Environment string `json:"environment,omitempty"`
	// Namespace the pipeline may deploy to.
	Namespace string `json:"namespace"`
	// Manifests is a folder whose rendered kinds make the Role's rules.
	Manifests string `json:"manifests,omitempty"`
}

// LoadPolicy reads and validates a policy file, reporting every problem at once.
func LoadPolicy(path string) (*FederationPolicy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("%s: larger than 1 MiB", path)
	}
	return ParsePolicy(path, data)
}

// ParsePolicy parses data (named name in errors) and validates it.
func ParsePolicy(name string, data []byte) (*FederationPolicy, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: invalid YAML: %w", name, err)
	}
	var problems []string
	problems = append(problems, unknownFields(raw, reflect.TypeOf(FederationPolicy{}), "")...)
	p := &FederationPolicy{}
	if err := yaml.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	problems = append(problems, p.validate()...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("%s: invalid FederationPolicy:\n  %s", name, strings.Join(problems, "\n  "))
	}
	return p, nil
}

// unknownFields lists the paths of keys t has no json field for.
func unknownFields(v any, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			var out []string
			items, _ := v.([]any)
			for i, it := range items {
				out = append(out, unknownFields(it, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
			}
			return out
		}
		t = t.Elem()
	}
	m, ok := v.(map[string]any)
	if !ok || t.Kind() != reflect.Struct {
		return nil
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		fields[tag] = t.Field(i).Type
	}
	var out []string
	for k, val := range m {
		p := k
		if path != "" {
			p = path + "." + k
		}
		ft, ok := fields[k]
		if !ok {
			out = append(out, fmt.Sprintf("%s: unknown field", p))
			continue
		}
		out = append(out, unknownFields(val, ft, p)...)
	}
	return out
}

func (p *FederationPolicy) validate() []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	if p.APIVersion != "keyless.dev/v1alpha1" || p.Kind != "FederationPolicy" {
		add("apiVersion/kind: want keyless.dev/v1alpha1 FederationPolicy, got %q %q", p.APIVersion, p.Kind)
	}
	if len(p.Issuers) == 0 {
		add("issuers: at least one issuer is required")
	}
	if a := p.Artifacts; a != nil && a.TransparencyLog != "" && a.TransparencyLog != "Required" && a.TransparencyLog != "Skip" {
		add("artifacts.transparencyLog: %q, want Required or Skip", a.TransparencyLog)
	}
	issuers := map[string]Issuer{}
	urls := map[string]string{}
	for i, is := range p.Issuers {
		at := fmt.Sprintf("issuers[%d]", i)
		if is.Name == "" {
			add("%s.name: required", at)
		} else if _, dup := issuers[is.Name]; dup {
			add("%s.name: duplicate issuer %q", at, is.Name)
		}
		switch is.Provider {
		case ProviderGitLab, ProviderGitHub, ProviderGeneric:
		default:
			add("%s.provider: %q, want gitlab, github or generic", at, is.Provider)
		}
		if u, err := url.Parse(is.URL); err != nil || u.Scheme != "https" || u.Host == "" {
			add("%s.url: %q, want an https:// URL (the token's iss claim)", at, is.URL)
		} else if other, dup := urls[is.URL]; dup {
			add("%s.url: duplicate of issuer %q (one jwt entry per issuer URL)", at, other)
		} else {
			urls[is.URL] = is.Name
		}
		if is.Audience == "" {
			add("%s.audience: required (the aud the CI job requests, e.g. GitLab id_tokens aud)", at)
		}
		if is.CertificateAuthorityFile != "" {
			if _, err := os.Stat(is.CertificateAuthorityFile); err != nil {
				add("%s.certificateAuthorityFile: %v", at, err)
			}
		}
		issuers[is.Name] = is
	}
	if len(p.Pipelines) == 0 {
		add("pipelines: at least one pipeline is required")
	}
	for i, pl := range p.Pipelines {
		at := fmt.Sprintf("pipelines[%d]", i)
		is, ok := issuers[pl.Issuer]
		if !ok {
			add("%s.issuer: %q is not one of the issuers", at, pl.Issuer)
		}
		if pl.Project == "" || !strings.Contains(pl.Project, "/") {
			add("%s.project: %q, want a path like myorg/myapp", at, pl.Project)
		}
		if pl.ProjectID == "" && !pl.WaiveProjectID {
			add("%s.projectID: required (GitLab project_id / GitHub repository_id): a path can be re-registered by someone else; set waiveProjectID: true to accept that risk", at)
		}
		if len(pl.Refs) == 0 && pl.Environment == "" {
			add("%s.refs: give the branches (or an environment) allowed to deploy", at)
		}
		switch pl.RefType {
		case "", "branch", "tag":
		default:
			add("%s.refType: %q, want branch or tag", at, pl.RefType)
		}
		if pl.Namespace == "" {
			add("%s.namespace: required", at)
		}
		if ok && is.Provider == ProviderGitHub && pl.ProtectedOnly != nil && *pl.ProtectedOnly {
			add("%s.protectedOnly: GitHub tokens carry no protected-ref claim; protect the branch or use an environment with required reviewers", at)
		}
		if ok && is.Provider == ProviderGitHub && pl.Environment != "" && len(pl.Refs) > 0 {
			add("%s: with environment set, GitHub's sub names the environment, not the ref; give refs or environment, not both", at)
		}
	}
	return out
}

// protectedOnly defaults to true for GitLab.
func (pl Pipeline) protectedOnly(provider string) bool {
	if pl.ProtectedOnly != nil {
		return *pl.ProtectedOnly
	}
	return provider == ProviderGitLab
}

func (p *FederationPolicy) issuer(name string) Issuer {
	for _, is := range p.Issuers {
		if is.Name == name {
			return is
		}
	}
	return Issuer{}
}

var errNoPipelines = errors.New("no pipelines")
