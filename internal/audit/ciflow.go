package audit

import (
	"fmt"
	"regexp"
	"strings"
)

// ciVars is what a CI file itself says of its variables: which it assigns a
// plain value (a path, a literal, a command's output: not a stored
// credential), which are aliases of a stored one, which are OIDC tokens.
// A variable the file never assigns comes from the CI platform's settings:
// a stored value.
type ciVars struct {
	oidc  map[string]bool
	plain map[string]bool
	// files are the paths the file passes to --kubeconfig or assigns to
	// KUBECONFIG: writing a stored variable there is writing a kubeconfig.
	files []string
	// usesOIDC: the file mints OIDC tokens, so a CA certificate variable
	// beside them is public data, not a stored credential.
	usesOIDC bool
}

var (
	// credName: variable names that say "cluster credential", case-insensitive.
	credName = regexp.MustCompile(`(?i)^(?:\w*_)?(?:KUBE|K8S|KUBERNETES|CLUSTER|OPENSHIFT|OC)[_-]?(?:CONFIG|KUBECONFIG|TOKEN|CA|CA_PEM|CERT|CREDENTIALS?|SA_TOKEN)(?:_\w+)?$|^(?i:\w*_?KUBECONFIG\w*)$`)
	// varRef: ${{ secrets.X }}, ${{ env.X }}/${{ vars.X }}, $X, ${X}, $(X) (Azure), env.X (Jenkins).
	varRef = regexp.MustCompile(`\$\{\{\s*(secrets|env|vars)\.(\w+)\s*\}\}|\$\{(\w+)\}|\$\((\w+)\)|\$(\w+)|\benv\.(\w+)`)
	// assignment: a YAML key or a shell assignment at the start of a line.
	assignment = regexp.MustCompile(`^\s*(?:-\s+)?(?:export\s+)?([A-Za-z_]\w*)\s*(?::\s+|=)(.*)$`)
	// kubeconfigDest: a redirection or tee into a kubeconfig.
	kubeconfigDest = regexp.MustCompile(`(?:>>?|\btee\s+(?:-a\s+)?)\s*["']?(\S+)`)
	// credFlag: a credential flag of kubectl, oc or helm and its value.
	credFlag = regexp.MustCompile(`--(token|client-key|client-certificate|certificate-authority|kubeconfig)(?:=|\s+)["']?(\S+)`)
	// kubeTool: a command that talks to a cluster.
	kubeTool = regexp.MustCompile(`\b(kubectl|oc|helm|kustomize)\b|set-credentials|set-cluster`)
	// jenkinsBinding: a withCredentials binding's variable.
	jenkinsBinding   = regexp.MustCompile(`\b(?:file|string|kubeconfigFile|kubeconfigContent|usernamePassword)\s*\([^)]*\bvariable:\s*['"](\w+)['"]`)
	kubernetesDeploy = regexp.MustCompile(`\bkubernetesDeploy\s*\([^)]*kubeconfigId\s*:`)
	// secureFile: Azure's DownloadSecureFile input naming the file.
	secureFile   = regexp.MustCompile(`secureFile:\s*['"]?([\w.-]+)`)
	kubeFileName = regexp.MustCompile(`(?i)kube|k8s|cluster|aks|openshift`)
	// publicName: a cluster's CA certificate, public data an OIDC job
	// needs beside its token.
	publicName = regexp.MustCompile(`(?i)_(?:CA|CA_PEM|CA_FILE|CERT|CA_CERT)$`)
	// oidcUse: the file mints OIDC tokens (GitLab id_tokens, GitHub id-token: write).
	oidcUse = regexp.MustCompile(`(?m)^\s*id_tokens:|id-token:\s*write`)
	nameKey = regexp.MustCompile(`^\s*-?\s*(?:name|displayName|description)\s*:`)
)

// providedByCI are variables every CI platform sets to paths and metadata, never a credential.
var providedByCI = regexp.MustCompile(`^(?:HOME|PWD|TMPDIR|PATH|WORKSPACE|CI|(?:CI|GITHUB|RUNNER|BITBUCKET|CIRCLE|BUILD|SYSTEM|AGENT|JENKINS|TRAVIS|PIPELINE|GIT)_\w+)$`)

func newCIVars(lines []string, oidc map[string]bool) *ciVars {
	v := &ciVars{oidc: oidc, plain: map[string]bool{}, usesOIDC: oidcUse.MatchString(strings.Join(uncommented(lines), "\n"))}
	// Two passes: an alias of a stored variable (KC=$KUBE_B64) stays stored.
	for range 2 {
		for _, l := range lines {
			m := assignment.FindStringSubmatch(l)
			if m == nil || comment(l) {
				continue
			}
			val := strings.Trim(strings.TrimSpace(m[2]), `"'`)
			if val == "" || val == "|" || val == ">" {
				continue
			}
			if !v.readsStored(val) {
				v.plain[m[1]] = true
			}
			if strings.EqualFold(m[1], "KUBECONFIG") && !strings.Contains(val, "$") {
				v.files = append(v.files, val)
			}
		}
	}
	for _, l := range lines {
		if m := credFlag.FindStringSubmatch(l); m != nil && m[1] == "kubeconfig" && !strings.Contains(m[2], "$") {
			v.files = append(v.files, strings.Trim(m[2], `"'`))
		}
	}
	return v
}

// refs returns the variables a line reads, and whether each is a GitHub
// secret (always stored, whatever the file assigns).
func refs(line string) (names []string, secret map[string]bool) {
	secret = map[string]bool{}
	for _, m := range varRef.FindAllStringSubmatch(line, -1) {
		name := ""
		for _, g := range m[2:] {
			if g != "" {
				name = g
				break
			}
		}
		if name == "" {
			continue
		}
		if m[1] == "secrets" {
			secret[name] = true
		}
		names = append(names, name)
	}
	return names, secret
}

// stored reports whether name, read on a line, holds a value kept in the CI
// platform's settings.
func (v *ciVars) stored(name string, secret bool) bool {
	if secret {
		return true
	}
	return !v.oidc[name] && !v.plain[name] && !providedByCI.MatchString(name)
}

// readsStored reports whether text reads a stored variable.
func (v *ciVars) readsStored(text string) bool {
	names, secret := refs(text)
	for _, n := range names {
		if v.stored(n, secret[n]) {
			return true
		}
	}
	return false
}

// firstStored returns the first stored variable text reads ("" for none).
func (v *ciVars) firstStored(text string) string {
	names, secret := refs(text)
	for _, n := range names {
		if v.stored(n, secret[n]) {
			return n
		}
	}
	return ""
}

// isKubeconfigPath reports a kubeconfig destination: ~/.kube/config, $KUBECONFIG,
// or a file the CI file passes to --kubeconfig or sets KUBECONFIG to.
func (v *ciVars) isKubeconfigPath(p string) bool {
	p = strings.Trim(p, `"';`)
	switch {
	case strings.HasSuffix(p, ".kube/config"), p == "$KUBECONFIG", p == "${KUBECONFIG}":
		return true
	}
	for _, f := range v.files {
		if p == f {
			return true
		}
	}
	return false
}

func comment(l string) bool {
	t := strings.TrimSpace(l)
	return strings.HasPrefix(t, "#") || strings.HasPrefix(t, "//")
}

// flowFinding is the KL010 finding of one line, by flow: a stored variable
// named like a cluster credential, written to a kubeconfig, passed to a
// credential flag, or bound by Jenkins and handed to a cluster tool.
func (v *ciVars) flowFinding(name string, lineNo int, l string, jenkins map[string]bool) (Finding, bool) {
	if nameKey.MatchString(l) {
		return Finding{}, false // a step's name is not a read
	}
	names, secret := refs(l)
	for _, n := range names {
		if credName.MatchString(n) && v.stored(n, secret[n]) && (!v.usesOIDC || !publicName.MatchString(n)) {
			return Rules["KL010"].finding(name, lineNo, fmt.Sprintf("the job reads the cluster credential variable %s", n)), true
		}
	}
	for _, loc := range kubeconfigDest.FindAllStringSubmatchIndex(l, -1) {
		dest := l[loc[2]:loc[3]]
		if !v.isKubeconfigPath(dest) {
			continue
		}
		// What is written: the command before the redirection, back to
		// the previous && or ;.
		cmd := l[:loc[0]]
		if k := strings.LastIndexAny(cmd, ";&"); k >= 0 {
			cmd = cmd[k+1:]
		}
		if n := v.firstStored(cmd); n != "" {
			return Rules["KL010"].finding(name, lineNo, fmt.Sprintf("the job writes the CI variable %s into a kubeconfig (%s)", n, dest)), true
		}
	}
	if m := secureFile.FindStringSubmatch(l); m != nil && kubeFileName.MatchString(m[1]) {
		return Rules["KL010"].finding(name, lineNo, fmt.Sprintf("the job downloads the secure file %s, a stored kubeconfig", m[1])), true
	}
	if kubeTool.MatchString(l) {
		for _, m := range credFlag.FindAllStringSubmatch(l, -1) {
			if n := v.firstStored(m[2]); n != "" {
				return Rules["KL010"].finding(name, lineNo, fmt.Sprintf("the job passes the CI variable %s to --%s", n, m[1])), true
			}
		}
	}
	for n := range jenkins {
		if (kubeTool.MatchString(l) || strings.Contains(l, "KUBECONFIG")) && mentionsVar(l, n) {
			return Rules["KL010"].finding(name, lineNo, fmt.Sprintf("the Jenkins credential bound to %s reaches a cluster tool", n)), true
		}
	}
	if kubernetesDeploy.MatchString(l) {
		return Rules["KL010"].finding(name, lineNo, "kubernetesDeploy(kubeconfigId: …) deploys with a kubeconfig stored in Jenkins"), true
	}
	return Finding{}, false
}

func mentionsVar(l, n string) bool {
	for _, form := range []string{"$" + n, "${" + n + "}", "env." + n} {
		if i := strings.Index(l, form); i >= 0 {
			end := i + len(form)
			if end == len(l) || !isWordByte(l[end]) || strings.HasSuffix(form, "}") {
				return true
			}
		}
	}
	return false
}

func isWordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// jenkinsBindings are the withCredentials variables of a Jenkinsfile.
func jenkinsBindings(lines []string) map[string]bool {
	out := map[string]bool{}
	for _, l := range lines {
		if comment(l) {
			continue
		}
		for _, m := range jenkinsBinding.FindAllStringSubmatch(l, -1) {
			out[m[1]] = true
		}
	}
	return out
}

// gitlabCertIntegration: GitLab's certificate-based cluster integration
// (deprecated) hands jobs KUBECONFIG/KUBE_TOKEN from the project's settings;
// a job gated on it reads a stored credential without naming one.
var gitlabCertIntegration = regexp.MustCompile(`^\s*kubernetes:\s*active\b|\$KUBERNETES_ACTIVE\b|template:\s*['"]?(?:Auto-DevOps|Jobs/Deploy(?:\.latest)?)\.gitlab-ci\.yml`)
