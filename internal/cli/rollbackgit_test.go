package cli

import (
	"strings"
	"testing"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// keyless rollback and history --changes work through a Git commit: a chart
// or multi-source Application is told how to roll back instead.
func TestRollbackNeedsOneGitSource(t *testing.T) {
	git := kv1.ApplicationSource{RepoURL: "https://git.example.com/shop.git", Path: "deploy"}
	chart := kv1.ApplicationSource{RepoURL: "https://charts.example.com", Chart: "web"}
	for name, tc := range map[string]struct {
		spec kv1.ApplicationSpec
		want string
	}{
		"git":          {kv1.ApplicationSpec{Source: git}, ""},
		"chart":        {kv1.ApplicationSpec{Source: chart}, "targetRevision"},
		"multi-source": {kv1.ApplicationSpec{Sources: []kv1.ApplicationSource{chart, {RepoURL: git.RepoURL, Ref: "values"}}}, "spec.sources"},
	} {
		err := rollsBackThroughGit(&kv1.Application{Spec: tc.spec})
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}
