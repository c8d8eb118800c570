// Package audit finds what must never be stored or granted for CI/CD: stored
// cluster credentials (kubeconfigs, static tokens) and over-broad RBAC, and
// says what to do instead, the keyless way.
package audit

import (
	"fmt"
	"sort"
	"strings"
)

// Severity orders findings.
type Severity int

// Severities, lowest first.
const (
	Low Severity = iota + 1
	Medium
	High
	Critical
)

func (s Severity) String() string {
	return map[Severity]string{Low: "low", Medium: "medium", High: "high", Critical: "critical"}[s]
}

// MarshalText renders the severity by name in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity by name, so the JSON reports read back
// into Findings.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity parses low, medium, high or critical.
func ParseSeverity(s string) (Severity, error) {
	for _, v := range []Severity{Low, Medium, High, Critical} {
		if strings.EqualFold(s, v.String()) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("severity %q: want low, medium, high or critical", s)
}

// Finding is one problem, where it is, why it matters and the fix.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	// Commit is set for findings in Git history (`audit repo --history`):
	// the short id of a commit whose tree holds the file.
	Commit string `json:"commit,omitempty"`
	What   string `json:"what"`
	Why    string `json:"why"`
	Fix    string `json:"fix"`
}

// Rule describes one check.
type Rule struct {
	ID       string
	Severity Severity
	Why      string
	Fix      string
}

// Rules are keyless's repository checks.
var Rules = map[string]Rule{
	"KL001": {"KL001", Critical, "a kubeconfig with credentials in Git is a cluster credential anyone with read access can use, with no expiry and no audit trail", "remove it and rotate the credential; deploy with GitOps (`keyless bump` + the in-cluster controller) or OIDC (`keyless deploy` with the job's id_token), see docs/oidc.md"},
	"KL002": {"KL002", Critical, "a base64-encoded kubeconfig is still a stored cluster credential", "remove it and rotate the credential; use `keyless deploy` with the CI job's OIDC token instead"},
	"KL010": {"KL010", High, "the job reads a long-lived cluster credential from a CI variable: a leak gives unbounded, unaudited cluster access", "replace with id_tokens + `keyless deploy` (see docs/oidc.md), or move to GitOps: `keyless bump`"},
	"KL011": {"KL011", Low, "a long-lived cloud key that obtains a cluster credential is not a stored kubeconfig, but it has the same reach and never expires", "use the cloud provider's OIDC / workload identity federation for the CI job"},
	"KL012": {"KL012", High, "GitLab's certificate-based cluster integration (deprecated) hands every job of the project a stored cluster credential (KUBECONFIG, KUBE_TOKEN) from the project's settings", "remove the cluster from the project's settings; deploy with GitOps (`keyless bump`) or `keyless deploy` with the job's id_token"},
	"KL020": {"KL020", High, "a service-account-token Secret is a long-lived static token that never expires", "use short-lived tokens (TokenRequest, projected volumes) or OIDC federation; delete the Secret"},
	"KL021": {"KL021", Critical, "cluster-admin for a ServiceAccount or CI user gives a CI/CD tool the whole cluster", "bind a namespaced Role listing only the kinds deployed (`keyless oidc rbac`, config/install)"},
	"KL022": {"KL022", High, "wildcard or privilege-escalating RBAC (*, impersonate, escalate, bind) lets the subject grant itself more", "list the resources and verbs needed; keep impersonate limited by resourceNames"},
	"KL040": {"KL040", High, "a Secret with plaintext values in Git is readable by everyone who can read the repository, its forks and every clone, for ever (history keeps it after a delete)", "encrypt it: `keyless secret encrypt --age <team recipient> FILE --in-place` and set spec.decryption on the Application (docs/secrets.md), or use External Secrets / Sealed Secrets; rotate the values already committed"},
	"KL041": {"KL041", Critical, "a committed age or OpenPGP private key decrypts every SOPS file encrypted for it: the repository's secrets are as good as plaintext", "remove it, rotate it (new key, re-encrypt every file for it with `keyless secret edit`/`encrypt`), and keep private keys only in the namespace's decryption Secret (docs/secrets.md)"},
	"KL031": {"KL031", High, "an AuthenticationConfiguration that trusts CI tokens without pinning the project/repository id, or that can map a token to a system: user, lets other projects' pipelines (or a crafted sub) in", "generate it with `keyless oidc config` from a FederationPolicy (pins the project id, refs and protected refs; prefixes usernames; refuses system: names)"},
	"KL030": {"KL030", High, "a FederationPolicy pipeline without a pinned project id or with unprotected refs trusts tokens others can mint", "set projectID and keep protectedOnly: true (docs/oidc.md, security pitfalls)"},
}

func (r Rule) finding(file string, line int, what string) Finding {
	return Finding{Rule: r.ID, Severity: r.Severity, File: file, Line: line, What: what, Why: r.Why, Fix: r.Fix}
}

// sortFindings orders by severity (highest first), then file and line.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Severity != fs[j].Severity {
			return fs[i].Severity > fs[j].Severity
		}
		if fs[i].File != fs[j].File {
			return fs[i].File < fs[j].File
		}
		return fs[i].Line < fs[j].Line
	})
}
