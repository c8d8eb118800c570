package demo

import "strings"

// The demo application, as the seed documents describe it: a small Helm chart
// in the application's repository (helm-charts/myapp), deployed by the Argo
// CD Application of seed 000, and a migration Job the pipeline deploys itself.
const (
	project    = "myorg/myapp"
	projectID  = 4242
	appName    = "myapp"
	appNS      = "myapp"
	repoName   = "myapp"
	chartPath  = "helm-charts/myapp"
	valuesFile = chartPath + "/values.yaml"
	imageRepo  = "registry.example.com/myorg/myapp"
	audience   = "k8s-demo"
)

// chartFiles are the repository's first commit. enabled and tag are the
// values the steps change.
func chartFiles(tag string, enabled bool) map[string]string {
	return map[string]string{
		chartPath + "/Chart.yaml": "apiVersion: v2\nname: myapp\nversion: 0.1.0\n",
		valuesFile:                values(tag, enabled),
		chartPath + "/templates/deployment.yaml": `{{- if .Values.enabled }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: myapp
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: myapp}
  template:
    metadata:
      labels: {app: myapp}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: myapp
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
        ports:
        - containerPort: 8080
{{- end }}
`,
		chartPath + "/templates/service.yaml": `{{- if .Values.enabled }}
apiVersion: v1
kind: Service
metadata:
  name: myapp
spec:
  selector: {app: myapp}
  ports:
  - port: 80
    targetPort: 8080
{{- end }}
`,
		chartPath + "/templates/configmap.yaml": `{{- if .Values.enabled }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: myapp-banner
data:
  banner: {{ .Values.banner | quote }}
{{- end }}
`,
		"migrations/job.yaml": `# Run by the pipeline itself with its OIDC token (keyless deploy), not by GitOps.
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate-1
spec:
  template:
    spec:
      restartPolicy: Never
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: migrate
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        image: registry.example.com/myorg/myapp-migrate:1
`,
		".gitlab-ci.yml": `# The pipeline holds no cluster credential: it bumps the tag in Git, and deploys
# its migration Job with the job's own short-lived OIDC token.
bump:
  stage: deploy
  rules: [{if: '$CI_COMMIT_BRANCH == "main"'}]
  script:
    - keyless bump --file ` + valuesFile + ` --set image.tag=$CI_COMMIT_SHORT_SHA --push --token-env CI_JOB_TOKEN --committer "GitLab CI <ci@example.com>" --skip-ci

migrate:
  stage: deploy
  id_tokens:
    K8S_TOKEN:
      aud: ` + audience + `
  script:
    - keyless deploy migrations -n myapp --server $K8S_SERVER --certificate-authority $K8S_CA_FILE --token-env K8S_TOKEN
`,
	}
}

func values(tag string, enabled bool) string {
	e := "true"
	if !enabled {
		e = "false"
	}
	return strings.NewReplacer("TAG", tag, "ENABLED", e).Replace(`# myapp's Helm values. CI changes image.tag with keyless bump.
enabled: ENABLED
replicas: 1
image:
  repository: ` + imageRepo + `
  tag: "TAG"   # bumped by CI
banner: "hello from keyless"
`)
}

// seedArgoCD is seed 000's Argo CD Application, pointed at the demo's Git server.
func seedArgoCD(repoURL string) string {
	return `# The Argo CD Application CRD of seed document 000.
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: myapp
  namespace: argocd
spec:
  source:
    repoURL: ` + repoURL + `
    targetRevision: main
    path: ` + chartPath + `
  destination:
    server: https://kubernetes.default.svc
    namespace: myapp
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
`
}

// policyYAML is the FederationPolicy trusting the demo issuer for main of
// myorg/myapp, deploying migrations/ into myapp.
func policyYAML(issuerURL, caFile string) string {
	return `# keyless oidc: which CI jobs may deploy what, with their own OIDC token.
apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- name: gitlab
  provider: gitlab
  url: ` + issuerURL + `
  audience: ` + audience + `
  certificateAuthorityFile: ` + caFile + `
pipelines:
- issuer: gitlab
  project: ` + project + `
  projectID: "4242"
  refs: [main]
  namespace: ` + appNS + `
  manifests: migrations
`
}

// legacyCI is what keyless audit exists to find: a pipeline that stores a
// kubeconfig in a CI variable.
const legacyCI = `deploy:
  stage: deploy
  script:
    - echo "$KUBE_CONFIG" | base64 -d > kubeconfig
    - kubectl --kubeconfig kubeconfig apply -f k8s/
`
