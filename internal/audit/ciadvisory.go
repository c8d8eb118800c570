package audit

import (
	"fmt"
	"regexp"
	"strings"
)

// cloudReach is a long-lived cloud key that a CI file uses to obtain a
// cluster credential: not a stored kubeconfig, but the same reach.
type cloudReach struct {
	provider string
	// key matches the line using the long-lived key.
	key *regexp.Regexp
	// reach matches the command or action that turns it into cluster access
	// (anywhere in the file).
	reach *regexp.Regexp
	fix   string
}

var cloudReaches = []cloudReach{
	{"AWS", regexp.MustCompile(`aws-access-key-id:|AWS_SECRET_ACCESS_KEY`), regexp.MustCompile(`eks\s+update-kubeconfig|aws-actions/amazon-eks`),
		"use aws-actions/configure-aws-credentials with role-to-assume (GitHub OIDC) or GitLab id_tokens with AssumeRoleWithWebIdentity"},
	{"GCP", regexp.MustCompile(`credentials_json:|GOOGLE_CREDENTIALS|GCLOUD_SERVICE_KEY`), regexp.MustCompile(`get-gke-credentials|container\s+clusters\s+get-credentials`),
		"use google-github-actions/auth with workload_identity_provider (Workload Identity Federation)"},
	{"Azure", regexp.MustCompile(`AZURE_CREDENTIALS`), regexp.MustCompile(`aks-set-context|k8s-set-context|aks\s+get-credentials`),
		"use azure/login with client-id, tenant-id and subscription-id only (OIDC federated credentials)"},
	{"DigitalOcean", regexp.MustCompile(`DIGITALOCEAN_ACCESS_TOKEN`), regexp.MustCompile(`doctl\s+kubernetes\s+cluster\s+kubeconfig\s+save`),
		"deploy from inside the cluster (GitOps: keyless bump + the controller); DigitalOcean has no CI workload identity federation"},
	{"IBM Cloud", regexp.MustCompile(`ibmcloud\b.*--apikey|IBMCLOUD_API_KEY`), regexp.MustCompile(`ibmcloud\s+(?:ks|oc)\s+cluster\s+config`),
		"use an IBM Cloud trusted profile with compute-resource or OIDC identity federation"},
}

// cloudKeyFindings are the advisory (low) findings of a CI file: a cloud
// key that reaches the cluster. A commented line is no use of a key.
func cloudKeyFindings(name string, lines []string) []Finding {
	var out []Finding
	text := strings.Join(uncommented(lines), "\n")
	for _, c := range cloudReaches {
		if !c.reach.MatchString(text) {
			continue
		}
		for i, l := range lines {
			if !comment(l) && c.key.MatchString(l) {
				f := Rules["KL011"].finding(name, i+1, fmt.Sprintf("a long-lived %s key obtains the cluster credential", c.provider))
				f.Fix = c.fix
				out = append(out, f)
				break
			}
		}
	}
	return out
}

func uncommented(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if !comment(l) {
			out = append(out, l)
		}
	}
	return out
}
