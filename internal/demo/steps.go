package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/audit"
	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/oidc"
)

var developer = object.Signature{Name: "Dana Developer", Email: "dana@example.com"}

// commit is a developer's push to the application repository.
func (e *env) commit(ctx context.Context, files map[string]string, del []string, msg string) (string, error) {
	who := developer
	who.When = time.Now()
	return e.git.Commit(ctx, repoName, gitserver.Commit{Files: files, Delete: del, Message: msg, Author: &who, Committer: &who})
}

// gitlabHook is what GitLab sends the controller after a push.
func (e *env) gitlabHook(ctx context.Context) error {
	body := fmt.Sprintf(`{"object_kind":"push","ref":"refs/heads/main","project":{"git_http_url":%q}}`, e.repoURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.hookURL+"/hooks/gitlab", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Gitlab-Token", e.hookSecret)
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook: %s", resp.Status)
	}
	return nil
}

// waitFor polls cond until it holds, ctx ends or the step timeout passes.
func (e *env) waitFor(ctx context.Context, what string, cond func() (bool, string)) error {
	last := ""
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, e.opts.StepTimeout, true, func(context.Context) (bool, error) {
		ok, state := cond()
		last = state
		return ok, nil
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
	}
	return fmt.Errorf("timed out after %s waiting for %s (last: %s)", e.opts.StepTimeout, what, last)
}

func (e *env) app(ctx context.Context) (*kv1.Application, error) {
	app := &kv1.Application{}
	return app, e.admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: appName}, app)
}

// waitApp waits for the Application to be Ready at revision ("" any).
func (e *env) waitApp(ctx context.Context, revision string) (*kv1.Application, error) {
	var app *kv1.Application
	err := e.waitFor(ctx, "the Application to be Synced/Healthy", func() (bool, string) {
		a, err := e.app(ctx)
		if err != nil {
			return false, err.Error()
		}
		app = a
		ready := apimeta.IsStatusConditionTrue(a.Status.Conditions, kv1.ReadyCondition) && a.Status.ObservedGeneration == a.Generation
		return ready && a.Status.Sync.Status == kv1.SyncStatusSynced && a.Status.Health.Status == kv1.HealthHealthy &&
			(revision == "" || a.Status.LastAppliedRevision == revision), fmt.Sprintf("sync=%s health=%s revision=%s", a.Status.Sync.Status, a.Status.Health.Status, kv1.ShortSHA(a.Status.LastAppliedRevision))
	})
	return app, err
}

// rolledOut reports whether the Deployment runs image on every replica.
func (e *env) rolledOut(ctx context.Context, image string) (bool, string) {
	d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, appName, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	got := d.Spec.Template.Spec.Containers[0].Image
	s := d.Status
	return got == image && s.ObservedGeneration == d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want,
		fmt.Sprintf("image %s, %d/%d updated, %d available", got, s.UpdatedReplicas, want, s.AvailableReplicas)
}

// 1. The seed's Argo CD Application, imported and applied by the admin.
func (e *env) stepImport(ctx context.Context) ([]string, error) {
	seed := filepath.Join(e.dir, "argocd-application.yaml")
	if err := os.WriteFile(seed, []byte(seedArgoCD(e.repoURL)), 0o600); err != nil {
		return nil, err
	}
	out, err := e.keyless(ctx, nil, "import", "argocd", seed)
	if err != nil {
		return nil, err
	}
	app := &kv1.Application{}
	if err := yaml.UnmarshalStrict([]byte(out), app); err != nil {
		return nil, fmt.Errorf("reading keyless import's output: %w", err)
	}
	// What Argo CD keeps elsewhere: the repository credential.
	app.Spec.Source.SecretRef = &kv1.LocalObjectReference{Name: "myapp-git"}
	if err := e.admin.Create(ctx, app); err != nil {
		return nil, fmt.Errorf("creating the Application: %w", err)
	}
	got, err := e.waitApp(ctx, e.firstCommit)
	if err != nil {
		return nil, err
	}
	return []string{
		"keyless import argocd argocd-application.yaml  → Application " + appNS + "/" + appName + " (+ spec.source.secretRef: myapp-git)",
		fmt.Sprintf("Synced/Healthy at %s, %d objects: %s", kv1.ShortSHA(got.Status.LastAppliedRevision), len(got.Status.Inventory), inventory(got)),
	}, nil
}

func inventory(app *kv1.Application) string {
	var names []string
	for _, r := range app.Status.Inventory {
		names = append(names, r.Kind+"/"+r.Name)
	}
	return strings.Join(names, ", ")
}

// 2. CI bumps the tag; GitLab's webhook makes the controller deploy it.
func (e *env) stepBump(ctx context.Context) ([]string, error) {
	vars := map[string]string{
		"CI": "true", "GITLAB_CI": "true", "CI_JOB_TOKEN": e.gitTok,
		"GITLAB_USER_NAME": developer.Name, "GITLAB_USER_EMAIL": developer.Email, "GITLAB_USER_LOGIN": "dana",
		"CI_PIPELINE_URL": "https://gitlab.example.com/" + project + "/-/pipelines/101", "CI_COMMIT_SHA": e.firstCommit,
	}
	out, err := e.keyless(ctx, vars, "bump", "--repo", e.repoURL, "--file", valuesFile, "--set", "image.tag=1.1.0",
		"--push", "--token-env", "CI_JOB_TOKEN", "--committer", "GitLab CI <ci@example.com>", "--skip-ci")
	if err != nil {
		return nil, err
	}
	pushed := time.Now()
	sha := strings.TrimSpace(out)
	c, err := e.gitCommit(sha)
	if err != nil {
		return nil, err
	}
	if c.Author.Email != developer.Email || c.Committer.Email != "ci@example.com" || !strings.Contains(c.Message, "[skip ci]") {
		return nil, fmt.Errorf("bump commit %s: author %s, committer %s, message %q", kv1.ShortSHA(sha), c.Author.Email, c.Committer.Email, c.Message)
	}
	if err := e.gitlabHook(ctx); err != nil {
		return nil, err
	}
	image := imageRepo + ":1.1.0"
	if err := e.waitFor(ctx, "the new version to run", func() (bool, string) { return e.rolledOut(ctx, image) }); err != nil {
		return nil, err
	}
	latency := time.Since(pushed)
	if _, err := e.waitApp(ctx, sha); err != nil {
		return nil, err
	}
	return []string{
		"keyless bump --file " + valuesFile + " --set image.tag=1.1.0 --push --token-env CI_JOB_TOKEN --skip-ci  (GitLab job environment)",
		fmt.Sprintf("commit %s %q — author %s <%s>, committer %s <%s>", kv1.ShortSHA(sha), firstLine(c.Message), c.Author.Name, c.Author.Email, c.Committer.Name, c.Committer.Email),
		fmt.Sprintf("GitLab push webhook → %s running on every replica: push to running in %s", image, latency.Round(10*time.Millisecond)),
	}, nil
}

func (e *env) gitCommit(sha string) (*object.Commit, error) {
	r, err := git.PlainOpen(filepath.Join(e.git.Root(), repoName+".git"))
	if err != nil {
		return nil, err
	}
	return r.CommitObject(plumbing.NewHash(sha))
}

// 3. A manual edit is reverted by the watch-based self-heal.
func (e *env) stepDrift(ctx context.Context) ([]string, error) {
	// As kubectl edit does, read again and retry when the Deployment moved
	// meanwhile (its status is still being written after the bump's rollout).
	var start time.Time
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		five := int32(5)
		d.Spec.Replicas = &five
		d.Spec.Template.Spec.Containers[0].Image = imageRepo + ":hotfix-by-hand"
		start = time.Now()
		_, err = e.cs.AppsV1().Deployments(appNS).Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
		return err
	})
	if err != nil {
		return nil, err
	}
	err = e.waitFor(ctx, "the edit to be reverted", func() (bool, string) {
		d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		img := d.Spec.Template.Spec.Containers[0].Image
		return *d.Spec.Replicas == 1 && img == imageRepo+":1.1.0", fmt.Sprintf("replicas %d, image %s", *d.Spec.Replicas, img)
	})
	if err != nil {
		return nil, err
	}
	latency := time.Since(start)
	return []string{
		"kubectl edit deployment/myapp: replicas 1→5, image → :hotfix-by-hand",
		fmt.Sprintf("reverted to Git (replicas 1, :1.1.0) in %s, by a watch event, no polling", latency.Round(10*time.Millisecond)),
	}, nil
}

// 4. Prune, and the guard against an empty render.
func (e *env) stepPrune(ctx context.Context) ([]string, error) {
	sha, err := e.commit(ctx, nil, []string{chartPath + "/templates/configmap.yaml"}, "drop the banner ConfigMap")
	if err != nil {
		return nil, err
	}
	if err := e.gitlabHook(ctx); err != nil {
		return nil, err
	}
	err = e.waitFor(ctx, "ConfigMap myapp-banner to be pruned", func() (bool, string) {
		_, err := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "myapp-banner", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if err != nil {
		return nil, err
	}
	if _, err := e.waitApp(ctx, sha); err != nil {
		return nil, err
	}
	ev := []string{fmt.Sprintf("commit %s removes templates/configmap.yaml → ConfigMap myapp-banner pruned", kv1.ShortSHA(sha))}

	files := chartFiles("1.1.0", false)
	empty, err := e.commit(ctx, map[string]string{valuesFile: files[valuesFile]}, nil, "oops: enabled: false")
	if err != nil {
		return nil, err
	}
	if err := e.gitlabHook(ctx); err != nil {
		return nil, err
	}
	var refusal string
	err = e.waitFor(ctx, "the empty render to be refused", func() (bool, string) {
		app, err := e.app(ctx)
		if err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(app.Status.Conditions, kv1.ReadyCondition)
		if c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "no objects") {
			refusal = c.Message
			return true, ""
		}
		return false, fmt.Sprintf("%+v", c)
	})
	if err != nil {
		return nil, err
	}
	for _, get := range []func() error{
		func() error {
			_, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, appName, metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := e.cs.CoreV1().Services(appNS).Get(ctx, appName, metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); err != nil {
			return nil, fmt.Errorf("an object was removed by the empty render: %w", err)
		}
	}
	ev = append(ev, fmt.Sprintf("commit %s renders nothing → refused: %q; Deployment and Service kept", kv1.ShortSHA(empty), firstLine(refusal)))

	fixed, err := e.commit(ctx, map[string]string{valuesFile: values("1.1.0", true)}, nil, "revert: enabled: true")
	if err != nil {
		return nil, err
	}
	if err := e.gitlabHook(ctx); err != nil {
		return nil, err
	}
	if _, err := e.waitApp(ctx, fixed); err != nil {
		return nil, err
	}
	return append(ev, fmt.Sprintf("commit %s fixes it → Synced/Healthy again", kv1.ShortSHA(fixed))), nil
}

// 5. The push path: the policy's RBAC, then tokens from CI.
func (e *env) stepOIDC(ctx context.Context) ([]string, error) {
	checkout := filepath.Join(e.dir, "ci-checkout")
	if _, err := git.PlainCloneContext(ctx, checkout, false, &git.CloneOptions{URL: e.repoURL, Auth: e.git.Auth(), Depth: 1}); err != nil {
		return nil, fmt.Errorf("the CI job's checkout: %w", err)
	}
	rbacYAML, err := e.keyless(ctx, nil, "oidc", "rbac", "--policy", e.policy, "--root", checkout)
	if err != nil {
		return nil, err
	}
	rbacDir := filepath.Join(e.dir, "oidc-rbac")
	if err := os.MkdirAll(rbacDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(rbacDir, "rbac.yaml"), []byte(rbacYAML), 0o600); err != nil {
		return nil, err
	}
	if _, err := e.keyless(ctx, nil, "apply", rbacDir, "-n", appNS, "--name", "keyless-oidc-rbac", "--kubeconfig", e.cluster.KubeconfigPath); err != nil {
		return nil, err
	}
	pol, err := oidc.LoadPolicy(e.policy)
	if err != nil {
		return nil, err
	}
	user := pol.Usernames(pol.Pipelines[0])[0]
	kinds := roleKinds(rbacYAML)

	job := ciissuer.GitLabJob{ProjectPath: project, ProjectID: projectID, Ref: "main", RefProtected: true, Audience: audience, UserLogin: "dana", PipelineID: 102}
	good, err := e.issuer.Sign(ciissuer.GitLabClaims(job))
	if err != nil {
		return nil, err
	}
	target := oidc.Target{Server: e.cluster.Config.Host, CAData: e.cluster.Config.CAData, Token: good}
	// The apiserver fetches the issuer's keys in the background, and RBAC
	// sees the new Role asynchronously: wait for both, as a CI job's retry would.
	if err := e.waitFor(ctx, "the apiserver to trust the issuer", func() (bool, string) {
		_, err := oidc.WhoAmI(ctx, target)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return nil, err
	}
	if err := e.waitFor(ctx, "the pipeline's Role to take effect", func() (bool, string) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: appNS, Verb: "create", Group: "batch", Resource: "jobs"}}}
		res, err := e.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		return err == nil && res.Status.Allowed, fmt.Sprint(err)
	}); err != nil {
		return nil, err
	}
	deployArgs := []string{"deploy", filepath.Join(checkout, "migrations"), "-n", appNS, "--server", e.cluster.Config.Host,
		"--certificate-authority", e.cluster.CACertPath, "--token-env", "K8S_TOKEN", "--wait", "1m"}
	out, errOut, code := e.opts.Keyless(ctx, map[string]string{"K8S_TOKEN": good}, deployArgs...)
	if code != 0 {
		return nil, fmt.Errorf("keyless deploy with the main-branch token: exit %d: %s", code, firstLine(errOut+out))
	}
	if _, err := e.cs.BatchV1().Jobs(appNS).Get(ctx, "migrate-1", metav1.GetOptions{}); err != nil {
		return nil, fmt.Errorf("the migration Job is not there: %w", err)
	}
	ev := []string{
		"keyless oidc config → the apiserver's AuthenticationConfiguration; keyless oidc rbac → Role " + kinds + " in " + appNS + " (applied by the admin)",
		fmt.Sprintf("main, protected: keyless deploy migrations → Job migrate-1 created and complete, as %s", user),
	}

	feature := job
	feature.Ref = "feature/login"
	featureTok, _ := e.issuer.Sign(ciissuer.GitLabClaims(feature))
	expiredIssuer := *e.issuer
	expiredIssuer.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expiredTok, _ := expiredIssuer.Sign(ciissuer.GitLabClaims(job))
	for _, c := range []struct{ name, token string }{{"feature branch", featureTok}, {"expired (2 h old)", expiredTok}} {
		out, errOut, code := e.opts.Keyless(ctx, map[string]string{"K8S_TOKEN": c.token}, deployArgs...)
		if code == 0 {
			return nil, fmt.Errorf("the %s token was accepted: %s", c.name, out)
		}
		why := strings.TrimPrefix(firstLine(errOut), "Error: ")
		if i := strings.Index(why, ": it must be signed"); i > 0 {
			why = why[:i] + " …" // the rest is the same advice for every refusal
		}
		ev = append(ev, fmt.Sprintf("%s token refused: %s", c.name, why))
	}
	return ev, nil
}

// roleKinds lists the resources the generated Role grants.
func roleKinds(rbacYAML string) string {
	var res []string
	for _, doc := range strings.Split(rbacYAML, "\n---") {
		var role rbacv1.Role
		if yaml.Unmarshal([]byte(doc), &role) != nil || role.Kind != "Role" {
			continue
		}
		for _, r := range role.Rules {
			for _, x := range r.Resources {
				if !slices.Contains(res, x) {
					res = append(res, x)
				}
			}
		}
	}
	return "[" + strings.Join(res, ", ") + "]"
}

// 6. The audit: a legacy pipeline is flagged, the demo is clean.
func (e *env) stepAudit(ctx context.Context) ([]string, error) {
	legacy := filepath.Join(e.dir, "legacy-repo")
	if err := os.MkdirAll(legacy, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(legacy, ".gitlab-ci.yml"), []byte(legacyCI), 0o600); err != nil {
		return nil, err
	}
	out, _, code := e.opts.Keyless(ctx, nil, "audit", "repo", legacy, "--format", "json")
	var legacyReport struct {
		Findings []audit.Finding `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &legacyReport); err != nil {
		return nil, fmt.Errorf("keyless audit repo --format json: %w\n%s", err, out)
	}
	i := slices.IndexFunc(legacyReport.Findings, func(f audit.Finding) bool { return f.Rule == "KL010" })
	if code != 1 || i < 0 {
		return nil, fmt.Errorf("keyless audit repo on a pipeline storing a kubeconfig: exit %d, no KL010 finding\n%s", code, out)
	}
	f := legacyReport.Findings[i]
	ev := []string{fmt.Sprintf("keyless audit repo legacy-repo → exit 1: %s %s %s:%d %s", f.Rule, f.Severity, f.File, f.Line, f.What)}
	checkout := filepath.Join(e.dir, "ci-checkout")
	if out, err := e.keyless(ctx, nil, "audit", "repo", checkout); err != nil {
		return nil, fmt.Errorf("the demo repository is not clean: %w\n%s", err, out)
	}
	ev = append(ev, "keyless audit repo (the demo repository) → no findings: no stored cluster credential")
	out, err := e.keyless(ctx, nil, "audit", "cluster", "-A", "--kubeconfig", e.cluster.KubeconfigPath, "--format", "json")
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, out)
	}
	var clusterReport audit.ClusterReport
	if err := json.Unmarshal([]byte(out), &clusterReport); err != nil {
		return nil, fmt.Errorf("keyless audit cluster --format json: %w\n%s", err, out)
	}
	if !clusterReport.InstallClusterWideChecked || len(clusterReport.Findings) != 0 {
		return nil, fmt.Errorf("keyless audit cluster did not confirm the install holds no cluster-wide rights:\n%s", out)
	}
	return append(ev, "keyless audit cluster -A → no findings; keyless holds no ClusterRole, and none of its identities may act cluster-wide (SubjectAccessReview)"), nil
}

// 7. Who did what.
func (e *env) stepHistory(ctx context.Context) ([]string, error) {
	kc := []string{"--kubeconfig", e.cluster.KubeconfigPath}
	apps, err := e.keyless(ctx, nil, append([]string{"get", "apps", "-n", appNS}, kc...)...)
	if err != nil {
		return nil, err
	}
	hist, err := e.keyless(ctx, nil, append([]string{"history", appName, "-n", appNS}, kc...)...)
	if err != nil {
		return nil, err
	}
	histJSON, err := e.keyless(ctx, nil, append([]string{"history", appName, "-n", appNS, "-o", "json"}, kc...)...)
	if err != nil {
		return nil, err
	}
	var records []kv1.SyncRecord
	if err := json.Unmarshal([]byte(histJSON), &records); err != nil {
		return nil, fmt.Errorf("keyless history -o json: %w\n%s", err, histJSON)
	}
	if !slices.ContainsFunc(records, func(r kv1.SyncRecord) bool {
		return strings.Contains(r.Author, developer.Name) && strings.Contains(r.Committer, "GitLab CI")
	}) {
		return nil, fmt.Errorf("keyless history has no sync authored by the person and committed by the CI bot:\n%s", hist)
	}
	data, err := os.ReadFile(e.auditPath)
	if err != nil {
		return nil, err
	}
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec controller.AuditRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			return nil, fmt.Errorf("audit trail line %d: %w", lines+1, err)
		}
		if rec.ServiceAccount != "keyless-deployer" {
			return nil, fmt.Errorf("audit trail line %d: sync of %s made as %q, not keyless-deployer", lines+1, kv1.ShortSHA(rec.Revision), rec.ServiceAccount)
		}
		lines++
	}
	if lines == 0 {
		return nil, errors.New("the controller's audit trail is empty")
	}
	var ev []string
	ev = append(ev, "keyless get apps -n "+appNS+":")
	ev = append(ev, indent(apps)...)
	ev = append(ev, "keyless history "+appName+" -n "+appNS+":")
	ev = append(ev, indent(hist)...)
	ev = append(ev, fmt.Sprintf("controller audit trail: %d JSON lines (audit.jsonl); every write made as system:serviceaccount:%s:keyless-deployer", lines, appNS))
	return ev, nil
}

func indent(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, "  "+l)
	}
	return out
}
