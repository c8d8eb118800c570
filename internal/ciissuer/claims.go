package ciissuer

import (
	"encoding/base64"
	"strconv"
)

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// GitLabJob describes a GitLab CI job, for GitLabClaims.
type GitLabJob struct {
	ProjectPath  string // myorg/myapp
	ProjectID    int
	Ref          string // main
	RefType      string // branch | tag
	RefProtected bool
	Environment  string
	EnvProtected bool
	UserLogin    string
	PipelineID   int
	Audience     string
	// SHA is the commit built (default 40 zeros and a 1).
	SHA string
	// PipelineSource is what started the pipeline (default push;
	// merge_request_event for a merge request's).
	PipelineSource string
}

// GitLabClaims are the claims of a GitLab CI id_token, as GitLab documents
// them (ids and booleans are strings).
func GitLabClaims(j GitLabJob) map[string]any {
	if j.RefType == "" {
		j.RefType = "branch"
	}
	c := map[string]any{
		"sub":                "project_path:" + j.ProjectPath + ":ref_type:" + j.RefType + ":ref:" + j.Ref,
		"aud":                j.Audience,
		"namespace_path":     namespaceOf(j.ProjectPath),
		"project_id":         strconv.Itoa(j.ProjectID),
		"project_path":       j.ProjectPath,
		"ref":                j.Ref,
		"ref_type":           j.RefType,
		"ref_path":           "refs/" + map[string]string{"branch": "heads", "tag": "tags"}[j.RefType] + "/" + j.Ref,
		"ref_protected":      strconv.FormatBool(j.RefProtected),
		"pipeline_id":        strconv.Itoa(j.PipelineID),
		"pipeline_source":    or(j.PipelineSource, "push"),
		"sha":                or(j.SHA, defaultSHA),
		"user_login":         j.UserLogin,
		"job_id":             strconv.Itoa(j.PipelineID*10 + 1),
		"runner_environment": "gitlab-hosted",
	}
	if j.Environment != "" {
		c["environment"] = j.Environment
		c["environment_protected"] = strconv.FormatBool(j.EnvProtected)
	}
	return c
}

// GitHubJob describes a GitHub Actions job, for GitHubClaims.
type GitHubJob struct {
	Repository   string `json:"repository"` // myorg/myapp
	RepositoryID int    `json:"repositoryID"`
	Ref          string `json:"ref"` // refs/heads/main
	Environment  string `json:"environment,omitempty"`
	Actor        string `json:"actor,omitempty"`
	Workflow     string `json:"workflow,omitempty"` // .github/workflows/deploy.yml
	Audience     string `json:"audience"`
	// RefProtected is the ref_protected claim (GitHub sets it for
	// branches with protection rules).
	RefProtected bool   `json:"refProtected,omitempty"`
	SHA          string `json:"sha,omitempty"`
	RunID        int    `json:"runID,omitempty"`
}

// GitHubClaims are the claims of a GitHub Actions OIDC token.
func GitHubClaims(j GitHubJob) map[string]any {
	sub := "repo:" + j.Repository + ":ref:" + j.Ref
	if j.Environment != "" {
		sub = "repo:" + j.Repository + ":environment:" + j.Environment
	}
	c := map[string]any{
		"sub":                sub,
		"aud":                j.Audience,
		"repository":         j.Repository,
		"repository_id":      strconv.Itoa(j.RepositoryID),
		"repository_owner":   namespaceOf(j.Repository),
		"ref":                j.Ref,
		"ref_type":           "branch",
		"actor":              j.Actor,
		"workflow_ref":       j.Repository + "/" + j.Workflow + "@" + j.Ref,
		"job_workflow_ref":   j.Repository + "/" + j.Workflow + "@" + j.Ref,
		"event_name":         "push",
		"ref_protected":      strconv.FormatBool(j.RefProtected),
		"sha":                or(j.SHA, defaultSHA),
		"run_id":             strconv.Itoa(j.RunID),
		"runner_environment": "github-hosted",
	}
	if j.Environment != "" {
		c["environment"] = j.Environment
	}
	return c
}

func namespaceOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[:i]
		}
	}
	return path
}

// defaultSHA is the commit of a job that names none.
const defaultSHA = "0000000000000000000000000000000000000001"

// or is s, or def when s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
