package controller_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestFileRemovedFromGitIsPruned: an object whose file is deleted from Git
// is deleted from the cluster; the others stay.
func TestFileRemovedFromGitIsPruned(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	ctx := t.Context()
	prune := e.push(nil, []string{"deploy/svc.yaml"}, "remove the service")
	e.gitlabHook(hookSecret)
	waitFor(t, 20*time.Second, "Service pruned", func() (bool, string) {
		_, err := e.cs.CoreV1().Services(appNS).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), errString(err)
	})
	got := e.waitApp("web", "synced at the prune", 20*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == prune
	})
	if len(got.Status.Inventory) != 2 {
		t.Fatalf("inventory after the prune: %+v", got.Status.Inventory)
	}
	if _, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("the prune took the Deployment too: %v", err)
	}
}

// TestDeletingTheApplicationDeletesWhatItDeployed: deleting the Application
// deletes its objects, and then the Git cache of a repository no Application
// reads any more.
func TestDeletingTheApplicationDeletesWhatItDeployed(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	ctx := t.Context()
	if cached := e.gitCache(); len(cached) == 0 {
		t.Fatal("the controller's Git cache is empty after a sync")
	}
	if err := e.admin.Delete(ctx, e.app("web")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "objects deleted with the Application", func() (bool, string) {
		_, dErr := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
		_, cErr := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "settings", metav1.GetOptions{})
		err := e.admin.Get(ctx, types.NamespacedName{Namespace: appNS, Name: "web"}, &kv1.Application{})
		return apierrors.IsNotFound(dErr) && apierrors.IsNotFound(cErr) && apierrors.IsNotFound(err), fmt.Sprint(dErr, cErr, err)
	})

	t.Log("the Git cache of a repository no Application reads any more is deleted")
	waitFor(t, 30*time.Second, "the controller's Git cache emptied", func() (bool, string) {
		left := e.gitCache()
		return len(left) == 0, strings.Join(left, " ")
	})
}

// gitCache lists the running controller's cached repositories and checkouts.
func (e *env) gitCache() []string {
	var out []string
	for _, sub := range []string{"repos", "checkouts"} {
		entries, _ := os.ReadDir(filepath.Join(e.cacheDir, sub))
		for _, en := range entries {
			out = append(out, sub+"/"+en.Name())
		}
	}
	return out
}
