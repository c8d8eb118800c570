package audit

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	yaml "go.yaml.in/yaml/v3"

	"github.com/keyless-cd/keyless/internal/yamlnode"
)

// MaxFileBytes is the largest file scanned.
const MaxFileBytes = 1 << 20

// ScanRepo scans a working tree (respecting .gitignore, skipping .git) and
// returns the findings, most severe first.
func ScanRepo(root string, opts ScanOptions) ([]Finding, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	patterns, err := gitignore.ReadPatterns(osfs.New(abs), nil)
	if err != nil {
		return nil, fmt.Errorf("reading .gitignore: %w", err)
	}
	matcher := gitignore.NewMatcher(patterns)
	includes := gitlabIncludes(abs)
	scripts := newCIScripts()
	var findings []Finding
	err = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(abs, path)
		if rel == "." {
			return nil
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if d.IsDir() {
			if d.Name() == ".git" || matcher.Match(parts, true) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || matcher.Match(parts, false) {
			return nil
		}
		name := filepath.ToSlash(rel)
		data, size, ok := readText(path)
		if !ok {
			if size > MaxFileBytes {
				opts.skipped(name, "", size)
			}
			return nil // unreadable or binary: not a text secret
		}
		ci := isCIFile(name) || includes.matches(name) || isCIByContent(name, data)
		if ci {
			scripts.called(name, data)
		}
		scripts.keep(name, data)
		findings = append(findings, scanFile(name, data, ci)...)
		return nil
	})
	findings = append(findings, scripts.scan()...)
	sortFindings(findings)
	return findings, err
}

// ScanOptions tune a repository scan; the zero value is the default.
type ScanOptions struct {
	// Skipped, when set, is told of every text file (or, in history, blob
	// of commit) not scanned because it is larger than MaxFileBytes, so a
	// clean result can say what it did not read.
	Skipped func(name, commit string, size int64)
}

func (o ScanOptions) skipped(name, commit string, size int64) {
	if o.Skipped != nil {
		o.Skipped(name, commit, size)
	}
}

// readText returns a file's content when it is a readable text file of at
// most MaxFileBytes. For a larger text file it returns its size and false; for
// a binary or unreadable one, size 0 and false.
func readText(path string) ([]byte, int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, false
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil || bytes.IndexByte(data, 0) >= 0 {
		return nil, 0, false
	}
	if len(data) > MaxFileBytes {
		st, err := f.Stat()
		if err != nil {
			return nil, 0, false
		}
		return nil, st.Size(), false
	}
	return data, int64(len(data)), true
}

// ScanFile checks one file's content (name is the repository-relative path;
// CI definitions are recognised by their conventional names).
func ScanFile(name string, data []byte) []Finding {
	return scanFile(name, data, isCIFile(name))
}

// scanFile checks one file; ci marks a CI definition (by name, or because a
// .gitlab-ci.yml includes it).
func scanFile(name string, data []byte, ci bool) []Finding {
	var out []Finding
	lower := strings.ToLower(name)
	isYAML := strings.HasSuffix(lower, ".yaml") || strings.HasSuffix(lower, ".yml")
	if ci {
		out = append(out, scanCI(name, data)...)
	}
	if isYAML || strings.Contains(filepath.Base(lower), "kubeconfig") || filepath.Base(lower) == "config" {
		out = append(out, scanYAML(name, data)...)
	}
	out = append(out, scanBase64(name, data)...)
	out = append(out, privateKeyFindings(name, data)...)
	return out
}

// isCIFile reports the CI definitions keyless reads, by name.
func isCIFile(name string) bool {
	base := filepath.Base(name)
	yml := strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml")
	switch {
	case base == ".gitlab-ci.yml" || strings.HasSuffix(name, ".gitlab-ci.yml"),
		strings.HasPrefix(name, ".github/workflows/") && yml,
		strings.HasPrefix(name, ".github/actions/") && (base == "action.yml" || base == "action.yaml"),
		base == "Jenkinsfile", name == ".circleci/config.yml", base == "bitbucket-pipelines.yml", base == "azure-pipelines.yml",
		base == ".travis.yml":
		return true
	}
	return false
}

// placeholder reports template values that are not secrets.
func placeholder(v string) bool {
	v = strings.TrimSpace(v)
	return v == "" || strings.Contains(v, "{{") || strings.Contains(v, "${") || strings.HasPrefix(v, "$") ||
		strings.HasPrefix(v, "<") || strings.Contains(strings.ToLower(v), "changeme") || strings.Contains(strings.ToLower(v), "change-me") || strings.Contains(strings.ToLower(v), "replace")
}

// scanYAML checks every document: kubeconfigs, token Secrets, RBAC, policies.
func scanYAML(name string, data []byte) []Finding {
	var out []Finding
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			break // EOF, or not YAML: nothing more to read
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		m := doc.Content[0]
		switch kind := yamlnode.Scalar(m, "kind"); {
		case kind == "Config" && yamlnode.Get(m, "users") != nil:
			out = append(out, kubeconfigCreds(name, m)...)
		case kind == "Secret" && yamlnode.Scalar(m, "type") == "kubernetes.io/service-account-token":
			out = append(out, Rules["KL020"].finding(name, m.Line, fmt.Sprintf("Secret %s of type kubernetes.io/service-account-token", yamlnode.Scalar(yamlnode.Get(m, "metadata"), "name"))))
		case kind == "Secret":
			out = append(out, plaintextSecretFindings(name, m)...)
		case kind == "ClusterRoleBinding" || kind == "RoleBinding":
			out = append(out, bindingFindings(name, m, kind)...)
		case kind == "ClusterRole" || kind == "Role":
			out = append(out, roleFindings(name, m, kind)...)
		case kind == "FederationPolicy":
			out = append(out, policyFindings(name, m)...)
		case kind == "AuthenticationConfiguration":
			out = append(out, authnFindings(name, m)...)
		}
	}
	return out
}

var credKeys = []string{"client-key-data", "token", "password"}

func kubeconfigCreds(name string, m *yaml.Node) []Finding {
	var out []Finding
	for _, u := range yamlnode.Seq(yamlnode.Get(m, "users")) {
		user := yamlnode.Get(u, "user")
		uname := yamlnode.Scalar(u, "name")
		for _, k := range credKeys {
			if v := yamlnode.Get(user, k); v != nil && !placeholder(v.Value) {
				out = append(out, Rules["KL001"].finding(name, v.Line, fmt.Sprintf("kubeconfig user %q carries %s", uname, k)))
			}
		}
		if ap := yamlnode.Get(user, "auth-provider"); ap != nil {
			for _, k := range []string{"id-token", "refresh-token", "client-secret", "access-token"} {
				if v := yamlnode.Get(yamlnode.Get(ap, "config"), k); v != nil && !placeholder(v.Value) {
					out = append(out, Rules["KL001"].finding(name, v.Line, fmt.Sprintf("kubeconfig user %q carries auth-provider %s", uname, k)))
				}
			}
		}
	}
	return out
}

func bindingFindings(name string, m *yaml.Node, kind string) []Finding {
	ref := yamlnode.Get(m, "roleRef")
	if kind != "ClusterRoleBinding" || yamlnode.Scalar(ref, "name") != "cluster-admin" {
		return nil
	}
	var out []Finding
	for _, s := range yamlnode.Seq(yamlnode.Get(m, "subjects")) {
		if k := yamlnode.Scalar(s, "kind"); k == "ServiceAccount" || k == "User" {
			out = append(out, Rules["KL021"].finding(name, s.Line, fmt.Sprintf("ClusterRoleBinding %s grants cluster-admin to %s %s", yamlnode.Scalar(yamlnode.Get(m, "metadata"), "name"), k, yamlnode.Scalar(s, "name"))))
		}
	}
	return out
}

func roleFindings(name string, m *yaml.Node, kind string) []Finding {
	var out []Finding
	roleName := yamlnode.Scalar(yamlnode.Get(m, "metadata"), "name")
	for _, r := range yamlnode.Seq(yamlnode.Get(m, "rules")) {
		verbs, resources := strings.Join(yamlnode.Scalars(yamlnode.Get(r, "verbs")), ","), yamlnode.Scalars(yamlnode.Get(r, "resources"))
		wildVerb := strings.Contains(","+verbs+",", ",*,")
		wildRes := false
		for _, res := range resources {
			if res == "*" {
				wildRes = true
			}
		}
		switch {
		case wildVerb && wildRes:
			out = append(out, Rules["KL022"].finding(name, r.Line, fmt.Sprintf("%s %s grants * on *", kind, roleName)))
		default:
			for _, v := range []string{"escalate", "bind", "impersonate"} {
				if strings.Contains(","+verbs+",", ","+v+",") {
					if v == "impersonate" && len(yamlnode.Scalars(yamlnode.Get(r, "resourceNames"))) > 0 {
						continue // limited to named identities, as keyless's own install does
					}
					out = append(out, Rules["KL022"].finding(name, r.Line, fmt.Sprintf("%s %s grants %s", kind, roleName, v)))
				}
			}
		}
	}
	return out
}

func policyFindings(name string, m *yaml.Node) []Finding {
	var out []Finding
	for i, p := range yamlnode.Seq(yamlnode.Get(m, "pipelines")) {
		project := yamlnode.Scalar(p, "project")
		if yamlnode.Scalar(p, "projectID") == "" {
			out = append(out, Rules["KL030"].finding(name, p.Line, fmt.Sprintf("pipelines[%d] (%s) has no projectID", i, project)))
		}
		if v := yamlnode.Get(p, "protectedOnly"); v != nil && v.Value == "false" {
			out = append(out, Rules["KL030"].finding(name, v.Line, fmt.Sprintf("pipelines[%d] (%s) sets protectedOnly: false", i, project)))
		}
	}
	return out
}

// authnFindings checks each jwt issuer of an apiserver AuthenticationConfiguration:
// a CI issuer must pin the project/repository id, and no mapping may yield a
// system: username.
func authnFindings(name string, m *yaml.Node) []Finding {
	var out []Finding
	for i, j := range yamlnode.Seq(yamlnode.Get(m, "jwt")) {
		url := yamlnode.Scalar(yamlnode.Get(j, "issuer"), "url")
		rules := nodeText(yamlnode.Get(j, "claimValidationRules"))
		mappings := nodeText(yamlnode.Get(j, "claimMappings"))
		ci := strings.Contains(url, "gitlab") || strings.Contains(url, "token.actions.githubusercontent.com") || mentionsCIClaim(rules+mappings)
		if ci && !strings.Contains(rules, "project_id") && !strings.Contains(rules, "repository_id") {
			out = append(out, Rules["KL031"].finding(name, j.Line, fmt.Sprintf("jwt[%d] (%s) trusts CI tokens without pinning project_id/repository_id in claimValidationRules", i, url)))
		}
		if !strings.Contains(nodeText(yamlnode.Get(j, "userValidationRules")), "system:") && !safeUsername(yamlnode.Get(yamlnode.Get(j, "claimMappings"), "username")) {
			out = append(out, Rules["KL031"].finding(name, j.Line, fmt.Sprintf("jwt[%d] (%s) maps usernames without a prefix and without a rule refusing system: names", i, url)))
		}
	}
	return out
}

// ciClaims are claims only CI job tokens carry (GitLab's and GitHub's): an
// issuer whose rules or mappings use one is a CI issuer whatever its
// hostname (a self-hosted GitLab, GitHub Enterprise).
var ciClaims = []string{
	"project_path", "namespace_path", "ref_protected", "pipeline_source", "pipeline_id", "ci_config_ref_uri",
	"runner_id", "repository", "job_workflow_ref", "workflow_ref", "run_id",
}

func mentionsCIClaim(text string) bool {
	for _, c := range ciClaims {
		if strings.Contains(text, c) {
			return true
		}
	}
	return false
}

// safeUsername reports a username mapping that cannot yield a system: name: a
// non-empty prefix, or an expression starting with a string literal, neither
// starting with system:.
func safeUsername(u *yaml.Node) bool {
	lead := yamlnode.Scalar(u, "prefix")
	if expr := strings.TrimSpace(yamlnode.Scalar(u, "expression")); expr != "" {
		lead = ""
		if len(expr) > 1 && (expr[0] == '"' || expr[0] == '\'') {
			if end := strings.IndexByte(expr[1:], expr[0]); end > 0 {
				lead = expr[1 : end+1]
			}
		}
	}
	return lead != "" && !strings.HasPrefix(lead, "system:")
}

// nodeText is a node's scalars joined, for keyword checks.
func nodeText(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	if n.Kind == yaml.ScalarNode {
		return n.Value + " "
	}
	var b strings.Builder
	for _, c := range n.Content {
		b.WriteString(nodeText(c))
	}
	return b.String()
}

var (
	// Jenkins: the Kubernetes CLI plugin, or a kubeconfig file credential.
	jenkinsKubeconfig = regexp.MustCompile(`withKubeConfig|withKubeCredentials|variable:\s*['"](KUBE_?CONFIG\w*)['"]`)
	setContext        = regexp.MustCompile(`azure/k8s-set-context`)
	setContextSecret  = regexp.MustCompile(`^\s*(kubeconfig|k8s-secret):`)
)

// scanCI flags jobs that read a cluster credential the CI platform stores:
// by the variable's name, and by where any stored variable's value goes (a
// kubeconfig, a credential flag, a Jenkins binding handed to kubectl). A
// token variable declared under GitLab id_tokens is an OIDC token, and a
// variable the file assigns a path or a command's output is not stored.
func scanCI(name string, data []byte) []Finding {
	lines := joinContinuations(strings.Split(string(data), "\n"))
	vars := newCIVars(lines, idTokens(data))
	jenkins := jenkinsBindings(lines)
	var out []Finding
	for i, l := range lines {
		if comment(l) {
			continue
		}
		if jenkinsKubeconfig.MatchString(l) {
			out = append(out, Rules["KL010"].finding(name, i+1, "the job reads a kubeconfig stored as a Jenkins credential"))
			continue
		}
		if f, ok := vars.flowFinding(name, i+1, l, jenkins); ok {
			out = append(out, f)
			continue
		}
		if gitlabCertIntegration.MatchString(l) {
			out = append(out, Rules["KL012"].finding(name, i+1, "the job relies on GitLab's certificate-based cluster integration"))
			continue
		}
		if setContext.MatchString(l) {
			for j := i + 1; j < len(lines) && j < i+8; j++ {
				if m := setContextSecret.FindStringSubmatch(lines[j]); m != nil && !comment(lines[j]) {
					if _, fired := vars.flowFinding(name, j+1, lines[j], nil); !fired {
						out = append(out, Rules["KL010"].finding(name, j+1, "azure/k8s-set-context with a stored "+m[1]))
					}
					break
				}
			}
		}
	}
	out = append(out, cloudKeyFindings(name, lines)...)
	out = append(out, embeddedFindings(name, data, lines)...)
	return out
}

// joinContinuations keeps line numbers but appends a shell line ending in
// a backslash to the line it continues, so a command split over lines is
// read whole (at its first line).
func joinContinuations(lines []string) []string {
	out := make([]string, len(lines))
	copy(out, lines)
	for i := 0; i < len(out); i++ {
		j := i
		for strings.HasSuffix(strings.TrimRight(out[j], " \t"), "\\") && j+1 < len(out) {
			j++
		}
		if j > i {
			var b strings.Builder
			for k := i; k <= j; k++ {
				b.WriteString(strings.TrimSuffix(strings.TrimRight(lines[k], " \t"), "\\"))
				b.WriteByte(' ')
				if k > i {
					out[k] = ""
				}
			}
			out[i] = b.String()
			i = j
		}
	}
	return out
}

// idTokens returns the variables a GitLab CI file declares under id_tokens.
func idTokens(data []byte) map[string]bool {
	out := map[string]bool{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return out
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "id_tokens" && n.Content[i+1].Kind == yaml.MappingNode {
					for j := 0; j+1 < len(n.Content[i+1].Content); j += 2 {
						out[n.Content[i+1].Content[j].Value] = true
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	return out
}

var base64Blob = regexp.MustCompile(`[A-Za-z0-9+/]{120,}={0,2}`)

// scanBase64 finds base64-encoded kubeconfigs with credentials in any text.
func scanBase64(name string, data []byte) []Finding {
	var out []Finding
	for _, loc := range base64Blob.FindAllIndex(data, 20) {
		raw, err := base64.StdEncoding.DecodeString(string(data[loc[0]:loc[1]]))
		if err != nil || !bytes.Contains(raw, []byte("kind: Config")) && !bytes.Contains(raw, []byte(`"kind":"Config"`)) {
			continue
		}
		if len(scanYAML(name, raw)) == 0 {
			continue
		}
		line := bytes.Count(data[:loc[0]], []byte("\n")) + 1
		out = append(out, Rules["KL002"].finding(name, line, "a base64-encoded kubeconfig with credentials"))
	}
	return out
}
