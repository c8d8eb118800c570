package audit

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ciCase is one pattern of a CI file and what the scan must say: the rule
// and line of each finding ("" for a near-miss that must stay clean).
type ciCase struct {
	file, text string
	want       []string // "KL010:3"
}

func runCICases(t *testing.T, cases map[string]ciCase) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, f := range ScanFile(tc.file, []byte(tc.text)) {
				got = append(got, f.Rule+":"+itoa(f.Line))
				if f.What == "" || f.Fix == "" {
					t.Errorf("finding without explanation: %+v", f)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("findings %v, want %v\n%s", got, tc.want, tc.text)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestCINamesWiderAndCaseInsensitive(t *testing.T) {
	runCICases(t, map[string]ciCase{
		"K8S_CONFIG":                              {".gitlab-ci.yml", "deploy:\n  script:\n    - echo \"$K8S_CONFIG\" > kc\n", []string{"KL010:3"}},
		"KUBERNETES_TOKEN":                        {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - run: kubectl get pods --token ${{ secrets.KUBERNETES_TOKEN }}\n", []string{"KL010:4"}},
		"cluster_config":                          {".gitlab-ci.yml", "d:\n  script:\n    - cp \"${cluster_config}\" /tmp/x\n", []string{"KL010:3"}},
		"OPENSHIFT_TOKEN":                         {".gitlab-ci.yml", "d:\n  script:\n    - oc login --token=$OPENSHIFT_TOKEN https://api:6443\n", []string{"KL010:3"}},
		"near-miss: comment":                      {".gitlab-ci.yml", "d:\n  script:\n    # - echo $K8S_CONFIG > kc\n    - echo hi\n", nil},
		"near-miss: id_token":                     {".gitlab-ci.yml", "d:\n  id_tokens:\n    K8S_TOKEN: {aud: k8s}\n  script:\n    - keyless deploy --token-env K8S_TOKEN\n    - kubectl --token=$K8S_TOKEN get pods\n", nil},
		"near-miss: a step's name":                {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - name: Write ${{ secrets.KUBE_CONFIG }} placeholder docs\n        run: echo done\n", nil},
		"CA variable of a static-token job":       {".gitlab-ci.yml", "d:\n  script:\n    - echo \"$K8S_CA\" > ca.pem\n", []string{"KL010:3"}},
		"near-miss: CA file beside an OIDC token": {".gitlab-ci.yml", "d:\n  id_tokens:\n    K8S_TOKEN: {aud: k8s}\n  script:\n    - keyless deploy . --server $K8S_SERVER --certificate-authority $K8S_CA_FILE --token-env K8S_TOKEN\n", nil},
		"near-miss: placeholder in docs":          {".gitlab-ci.yml", "d:\n  script:\n    - echo \"set CLUSTER_NAME\"\n", nil},
	})
}

func TestCIFlowWhateverTheName(t *testing.T) {
	runCICases(t, map[string]ciCase{
		"secret to ~/.kube/config":                      {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - run: |\n          mkdir -p ~/.kube\n          echo \"${{ secrets.PROD_ACCESS }}\" > ~/.kube/config\n", []string{"KL010:6"}},
		"base64 -d into $KUBECONFIG":                    {".gitlab-ci.yml", "d:\n  script:\n    - echo \"$PROD_B64\" | base64 -d > $KUBECONFIG\n", []string{"KL010:3"}},
		"a file later passed to --kubeconfig":           {".gitlab-ci.yml", "d:\n  script:\n    - printf '%s' \"$DEPLOY_CREDS\" > deploy.kc\n    - kubectl --kubeconfig deploy.kc apply -f k8s/\n", []string{"KL010:3"}},
		"tee into kubeconfig":                           {"bitbucket-pipelines.yml", "pipelines:\n  default:\n    - step:\n        script:\n          - echo $PROD | base64 -d | tee $HOME/.kube/config >/dev/null\n", []string{"KL010:5"}},
		"--token of set-credentials":                    {".gitlab-ci.yml", "d:\n  script:\n    - kubectl config set-credentials ci --token=\"$DEPLOY\"\n", []string{"KL010:3"}},
		"--client-key of kubectl":                       {".circleci/config.yml", "jobs:\n  d:\n    steps:\n      - run: kubectl --client-key=$PROD_KEY --client-certificate=cert.pem get pods\n", []string{"KL010:4"}},
		"helm --kubeconfig with a stored file variable": {".gitlab-ci.yml", "d:\n  script:\n    - helm upgrade web ./chart --kubeconfig \"$PROD_FILE\"\n", []string{"KL010:3"}},
		"continued line":                                {".gitlab-ci.yml", "d:\n  script:\n    - >\n      kubectl apply -f k8s/ \\\n        --token=$DEPLOY\n", []string{"KL010:4"}},
		"near-miss: EKS path in KUBECONFIG":             {".github/workflows/d.yml", "env:\n  KUBECONFIG: /tmp/kubeconfig\njobs:\n  d:\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          role-to-assume: arn:aws:iam::1:role/deploy\n      - run: aws eks update-kubeconfig --name prod --kubeconfig $KUBECONFIG\n      - run: kubectl --kubeconfig $KUBECONFIG apply -f k8s/\n", nil},
		"near-miss: a token from a command":             {".gitlab-ci.yml", "d:\n  script:\n    - TOKEN=$(aws eks get-token --cluster-name prod --output text --query status.token)\n    - kubectl --token=$TOKEN apply -f k8s/\n", nil},
		"near-miss: a path the CI provides":             {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - run: kubectl --kubeconfig $RUNNER_TEMP/kc get pods\n", nil},
		"near-miss: ${PLACEHOLDER} in a template":       {"templates/x.yaml", "kind: Config\nusers: [{name: a, user: {token: '${TOKEN}'}}]\n", nil},
	})
}

func TestCIJenkins(t *testing.T) {
	runCICases(t, map[string]ciCase{
		"withCredentials file to --kubeconfig":                   {"Jenkinsfile", "node {\n  withCredentials([file(credentialsId: 'prod', variable: 'KC')]) {\n    sh 'kubectl --kubeconfig $KC apply -f k8s/'\n  }\n}\n", []string{"KL010:3"}},
		"withCredentials string to oc":                           {"Jenkinsfile", "node {\n  withCredentials([string(credentialsId: 'tok', variable: 'T')]) {\n    sh \"oc login --token=${T} https://api:6443\"\n  }\n}\n", []string{"KL010:3"}},
		"kubernetesDeploy":                                       {"Jenkinsfile", "node {\n  kubernetesDeploy(kubeconfigId: 'prod', configs: 'k8s/*.yaml')\n}\n", []string{"KL010:2"}},
		"near-miss: a binding that never reaches a cluster tool": {"Jenkinsfile", "node {\n  withCredentials([string(credentialsId: 'npm', variable: 'NPM')]) {\n    sh 'npm publish --token $NPM'\n  }\n}\n", nil},
	})
}

func TestCIGitHubActions(t *testing.T) {
	runCICases(t, map[string]ciCase{
		"k8s-set-context with a service account secret": {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - uses: azure/k8s-set-context@v4\n        with:\n          method: service-account\n          k8s-url: https://api:6443\n          k8s-secret: ${{ secrets.SA }}\n", []string{"KL010:8"}},
		"composite action": {".github/actions/deploy/action.yml", "runs:\n  using: composite\n  steps:\n    - shell: bash\n      run: echo \"${{ inputs.kubeconfig }}\" > ~/.kube/config && echo $PROD > ~/.kube/config\n", []string{"KL010:5"}},
	})
}

func TestCIEmbeddedMaterial(t *testing.T) {
	runCICases(t, map[string]ciCase{
		"kubeconfig in a heredoc":                   {".gitlab-ci.yml", "d:\n  script:\n    - |\n      cat > ~/.kube/config <<EOF\n      apiVersion: v1\n      kind: Config\n      users:\n      - name: ci\n        user:\n          token: eyJhbGciOiJSUzI1NiJ9.hardcoded\n      EOF\n", []string{"KL001:10"}},
		"SA token Secret handed to k8s-set-context": {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - uses: azure/k8s-set-context@v4\n        with:\n          method: service-account\n          k8s-secret: |\n            apiVersion: v1\n            kind: Secret\n            type: kubernetes.io/service-account-token\n            metadata: {name: ci}\n            data: {token: ZXlK}\n", []string{"KL010:7", "KL020:8"}},
		"near-miss: an exec-plugin kubeconfig":      {".gitlab-ci.yml", "d:\n  script:\n    - |\n      cat > kc <<'EOF'\n      kind: Config\n      users:\n      - name: ci\n        user:\n          exec: {command: keyless, args: [token]}\n      EOF\n", nil},
	})
}

func TestCIGitLabCertificateIntegration(t *testing.T) {
	runCICases(t, map[string]ciCase{
		"only kubernetes active":   {".gitlab-ci.yml", "deploy:\n  only:\n    kubernetes: active\n  script: [kubectl apply -f k8s/]\n", []string{"KL012:3"}},
		"rules KUBERNETES_ACTIVE":  {".gitlab-ci.yml", "deploy:\n  rules:\n    - if: $KUBERNETES_ACTIVE\n  script: [kubectl apply -f k8s/]\n", []string{"KL012:3"}},
		"Auto DevOps":              {".gitlab-ci.yml", "include:\n  - template: Auto-DevOps.gitlab-ci.yml\n", []string{"KL012:2"}},
		"near-miss: commented out": {".gitlab-ci.yml", "deploy:\n  # only:\n  #   kubernetes: active\n  script: [echo]\n", nil},
	})
}

func TestCICloudKeysAdvisory(t *testing.T) {
	runCICases(t, map[string]ciCase{
		"AWS key with eks update-kubeconfig":          {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          aws-access-key-id: ${{ secrets.AWS_KEY }}\n          aws-secret-access-key: ${{ secrets.AWS_SECRET }}\n      - run: aws eks update-kubeconfig --name prod\n", []string{"KL011:6"}},
		"GCP credentials_json":                        {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - uses: google-github-actions/auth@v2\n        with:\n          credentials_json: ${{ secrets.GCP_SA }}\n      - uses: google-github-actions/get-gke-credentials@v2\n", []string{"KL011:6"}},
		"Azure credentials":                           {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - uses: azure/login@v2\n        with:\n          creds: ${{ secrets.AZURE_CREDENTIALS }}\n      - uses: azure/aks-set-context@v4\n", []string{"KL011:6"}},
		"DigitalOcean":                                {".gitlab-ci.yml", "d:\n  script:\n    - doctl auth init -t $DIGITALOCEAN_ACCESS_TOKEN\n    - doctl kubernetes cluster kubeconfig save prod\n", []string{"KL011:3"}},
		"IBM Cloud":                                   {".gitlab-ci.yml", "d:\n  script:\n    - ibmcloud login --apikey $IBM_KEY -r eu-de\n    - ibmcloud ks cluster config --cluster prod\n", []string{"KL011:3"}},
		"near-miss: GCP workload identity federation": {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - uses: google-github-actions/auth@v2\n        with:\n          workload_identity_provider: projects/1/locations/global/workloadIdentityPools/p/providers/gh\n      - uses: google-github-actions/get-gke-credentials@v2\n", nil},
		"near-miss: AWS OIDC role":                    {".github/workflows/d.yml", "jobs:\n  d:\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          role-to-assume: arn:aws:iam::1:role/deploy\n      - run: aws eks update-kubeconfig --name prod\n", nil},
	})
}

// TestCIFilesByContent: an Azure Pipelines file under any name and the
// shell scripts a CI file runs are scanned with the CI rules.
func TestCIFilesByContent(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"pipelines/release.yml": "trigger: [main]\npool: {vmImage: ubuntu-latest}\nsteps:\n- task: DownloadSecureFile@1\n  name: kc\n  inputs: {secureFile: prod-kubeconfig}\n- script: kubectl --kubeconfig $(kc.secureFilePath) apply -f k8s/\n- script: echo $(PROD_CFG) | base64 -d > ~/.kube/config\n",
		".gitlab-ci.yml":        "deploy:\n  script:\n    - ./scripts/deploy.sh\n    - sh ci/other.sh\n",
		"scripts/deploy.sh":     "#!/bin/sh\nset -e\necho \"$PROD_B64\" | base64 -d > ~/.kube/config\nkubectl apply -f k8s/\n",
		"ci/other.sh":           "#!/bin/sh\n# echo $KUBE_TOKEN was the old way\nkubectl apply -f k8s/\n",
		"tools/unused.sh":       "echo \"$PROD_B64\" | base64 -d > ~/.kube/config\n",
		".travis.yml":           "script:\n  - echo \"$DEPLOY_KUBE\" | base64 -d > ~/.kube/config\n",
		"docs/example.yml":      "steps:\n  - run: echo hi\n",
	}
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	findings, err := ScanRepo(root, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range findings {
		got = append(got, f.Rule+" "+f.File+":"+itoa(f.Line))
	}
	want := "KL010 .travis.yml:2,KL010 pipelines/release.yml:6,KL010 pipelines/release.yml:8,KL010 scripts/deploy.sh:3"
	if strings.Join(got, ",") != want {
		t.Errorf("findings %v\nwant %s", got, want)
	}
}
