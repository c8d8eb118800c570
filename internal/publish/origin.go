package publish

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// Origin is where a folder comes from: the repository URL, the revision in
// Flux's form (branch@sha1:commit) and the CI job.
type Origin struct {
	Source, Revision, Pipeline string
}

// OriginFromCIEnv reads the origin a CI platform states: GitLab
// (CI_PROJECT_URL, CI_COMMIT_REF_NAME, CI_COMMIT_SHA, CI_JOB_URL) or GitHub
// Actions (GITHUB_SERVER_URL/GITHUB_REPOSITORY, GITHUB_REF_NAME, GITHUB_SHA,
// the run's URL). Outside CI it is empty.
func OriginFromCIEnv(getenv func(string) string) Origin {
	switch {
	case getenv("GITLAB_CI") != "":
		o := Origin{Source: getenv("CI_PROJECT_URL"), Pipeline: getenv("CI_JOB_URL")}
		if sha := getenv("CI_COMMIT_SHA"); sha != "" {
			o.Revision = getenv("CI_COMMIT_REF_NAME") + "@sha1:" + sha
		}
		return o
	case getenv("GITHUB_ACTIONS") != "":
		server, repo := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_REPOSITORY")
		o := Origin{}
		if server != "" && repo != "" {
			o.Source = server + "/" + repo
			if id := getenv("GITHUB_RUN_ID"); id != "" {
				o.Pipeline = fmt.Sprintf("%s/%s/actions/runs/%s", server, repo, id)
			}
		}
		if sha := getenv("GITHUB_SHA"); sha != "" {
			o.Revision = getenv("GITHUB_REF_NAME") + "@sha1:" + sha
		}
		return o
	}
	return Origin{}
}

// OriginFromGit reads the origin from the Git checkout holding dir: the
// remote origin's URL (credentials removed) and HEAD as branch@sha1:commit.
// A folder outside a checkout has none (no error).
func OriginFromGit(dir string) (Origin, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return Origin{}, nil
	}
	if err != nil {
		return Origin{}, fmt.Errorf("reading the Git checkout of %s: %w", dir, err)
	}
	var o Origin
	if remote, err := repo.Remote("origin"); err == nil && len(remote.Config().URLs) > 0 {
		o.Source = withoutCredentials(remote.Config().URLs[0])
	}
	head, err := repo.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return o, nil // no commit yet
	}
	if err != nil {
		return Origin{}, fmt.Errorf("reading HEAD of %s: %w", dir, err)
	}
	name := "HEAD"
	if head.Name().IsBranch() {
		name = head.Name().Short()
	}
	o.Revision = name + "@sha1:" + head.Hash().String()
	return o, nil
}

// withoutCredentials drops a user and password from a URL (a token in a
// remote's URL must not be published in an annotation).
func withoutCredentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || u.Scheme == "" {
		return raw
	}
	u.User = nil
	return u.String()
}

// Or fills o's empty fields from other.
func (o Origin) Or(other Origin) Origin {
	if o.Source == "" {
		o.Source = other.Source
	}
	if o.Revision == "" {
		o.Revision = other.Revision
	}
	if o.Pipeline == "" {
		o.Pipeline = other.Pipeline
	}
	return o
}
