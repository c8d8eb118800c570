package controller

import (
	"testing"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/webhook"
)

// A push triggers an Application whose rendered Git source or values
// source it moves; a chart source is never a pushed repository.
func TestPushedSource(t *testing.T) {
	git, values := "https://git.example.com/shop/app.git", "https://git.example.com/shop/env.git"
	wanted := map[string]bool{webhook.NormalizeRepoURL(values): true}
	chart := kv1.ApplicationSource{RepoURL: "https://git.example.com/shop/env.git", Chart: "web"}
	cases := map[string]struct {
		spec kv1.ApplicationSpec
		ref  string
		want bool
	}{
		"values source on main":       {kv1.ApplicationSpec{Sources: []kv1.ApplicationSource{chart, {RepoURL: values, Ref: "values", TargetRevision: "main"}}}, "refs/heads/main", true},
		"values source, other branch": {kv1.ApplicationSpec{Sources: []kv1.ApplicationSource{chart, {RepoURL: values, Ref: "values", TargetRevision: "main"}}}, "refs/heads/dev", false},
		"single Git source":           {kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: values}}, "refs/heads/main", true},
		"other repository":            {kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: git}}, "refs/heads/main", false},
		"a chart at that URL":         {kv1.ApplicationSpec{Source: chart}, "refs/heads/main", false},
	}
	for name, tc := range cases {
		app := &kv1.Application{Spec: tc.spec}
		if _, got := pushedSource(app, wanted, tc.ref); got != tc.want {
			t.Errorf("%s: triggered = %v, want %v", name, got, tc.want)
		}
	}
}
