package engine

import (
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// TestDeployerIdentityIsNotHandedOut: a repository pusher must not get a
// pod running as the identity keyless writes with (its token would be
// mounted and usable outside Git), nor a ServiceAccount token Secret.
func TestDeployerIdentityIsNotHandedOut(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	cs := clientset(t)
	cfg := rest.CopyConfig(cluster.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":team-deployer"}
	imp, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pod := func(kind, sa string) string {
		spec := "    spec:\n      serviceAccountName: " + sa + "\n      containers: [{name: c, image: busybox}]\n"
		switch kind {
		case "Pod":
			return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  serviceAccountName: " + sa + "\n  containers: [{name: c, image: busybox}]\n"
		case "CronJob":
			return "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          serviceAccountName: " + sa + "\n          restartPolicy: Never\n          containers: [{name: c, image: busybox}]\n"
		}
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n" + spec
	}
	cases := map[string]struct {
		engine *Engine
		file   string
		names  string
	}{
		"Deployment as keyless-deployer":      {newEngine(t), pod("Deployment", "keyless-deployer"), "Deployment/d"},
		"Pod as the impersonated account":     {imp, pod("Pod", "team-deployer"), "Pod/p"},
		"CronJob as the impersonated account": {imp, pod("CronJob", "team-deployer"), "CronJob/cj"},
		"ServiceAccount token Secret": {newEngine(t), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: steal\n  annotations: {kubernetes.io/service-account.name: keyless-deployer}\ntype: kubernetes.io/service-account-token\n",
			"Secret/steal"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := renderFiles(t, map[string]string{"x.yaml": tc.file, "ok.yaml": configMap("fine-"+strings.ToLower(strings.ReplaceAll(name, " ", "-")), "1")})
			_, err := tc.engine.Apply(ctx, objs, ApplyOptions{Namespace: ns, Name: "identity"})
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("err = %v, want ErrRefused naming %s", err, tc.names)
			}
			cms, _ := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			for _, cm := range cms.Items {
				if strings.HasPrefix(cm.Name, "fine-") {
					t.Fatalf("ConfigMap/%s of a refused set was applied", cm.Name)
				}
			}
		})
	}
	// A pod with an identity of its own is fine.
	if _, err := newEngine(t).Apply(ctx, renderFiles(t, map[string]string{"x.yaml": pod("Deployment", "web")}), ApplyOptions{Namespace: ns, Name: "own"}); err != nil {
		t.Fatalf("a Deployment with its own ServiceAccount was refused: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "d", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Fatal("the allowed Deployment was not applied")
	}
}
