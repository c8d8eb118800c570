package audit

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/keyless-cd/keyless/internal/yamlnode"
)

// Limits on following GitLab includes.
const (
	maxIncludeDepth = 10
	maxIncludeFiles = 200
)

// ciIncludes is the set of repository files a root .gitlab-ci.yml includes
// with `include: local` (directly, through globs, or through included files).
type ciIncludes struct {
	patterns []*regexp.Regexp
}

// matches reports whether a repository-relative slash path is included.
func (c ciIncludes) matches(rel string) bool {
	for _, p := range c.patterns {
		if p.MatchString(rel) {
			return true
		}
	}
	return false
}

// gitlabIncludes follows the `include:` local entries of root/.gitlab-ci.yml,
// and of the files those name, to a bounded depth. Remote, project and
// template includes live elsewhere and are not followed.
func gitlabIncludes(root string) ciIncludes {
	var out ciIncludes
	seen := map[string]bool{}
	var follow func(rel string, depth int)
	follow = func(rel string, depth int) {
		if depth > maxIncludeDepth || seen[rel] || len(seen) >= maxIncludeFiles {
			return
		}
		seen[rel] = true
		data, _, ok := readText(filepath.Join(root, filepath.FromSlash(rel)))
		if !ok {
			return
		}
		for _, local := range includeLocals(data) {
			re, err := includeGlob(local)
			if err != nil {
				continue
			}
			out.patterns = append(out.patterns, re)
			for _, match := range globFiles(root, local, re) {
				follow(match, depth+1)
			}
		}
	}
	follow(".gitlab-ci.yml", 0)
	return out
}

// includeLocals returns the local paths of a GitLab CI file's include:
// a string, a list of strings and {local: …} maps, or one such map.
func includeLocals(data []byte) []string {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	inc := yamlnode.Get(doc.Content[0], "include")
	if inc == nil {
		return nil
	}
	items := []*yaml.Node{inc}
	if inc.Kind == yaml.SequenceNode {
		items = inc.Content
	}
	var out []string
	for _, it := range items {
		switch {
		case it.Kind == yaml.ScalarNode && !strings.Contains(it.Value, "://"):
			out = append(out, it.Value)
		case it.Kind == yaml.MappingNode && yamlnode.Scalar(it, "local") != "":
			out = append(out, yamlnode.Scalar(it, "local"))
		}
	}
	return out
}

// includeGlob turns a GitLab include path (leading / optional, * and **
// wildcards) into a regexp over repository-relative slash paths.
func includeGlob(p string) (*regexp.Regexp, error) {
	p = strings.TrimPrefix(path.Clean("/"+strings.TrimSpace(p)), "/")
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case p[i] == '*':
			b.WriteString("[^/]*")
		case p[i] == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// globFiles lists the repository files an include names: the path itself,
// or for a glob the files under its fixed leading directories.
func globFiles(root, local string, re *regexp.Regexp) []string {
	clean := strings.TrimPrefix(path.Clean("/"+strings.TrimSpace(local)), "/")
	if !strings.ContainsAny(clean, "*?") {
		return []string{clean}
	}
	dir := clean[:strings.IndexAny(clean, "*?")]
	dir = dir[:strings.LastIndex(dir, "/")+1]
	var out []string
	_ = filepath.WalkDir(filepath.Join(root, filepath.FromSlash(dir)), func(p string, d os.DirEntry, err error) error {
		if err != nil || len(out) >= maxIncludeFiles {
			return filepath.SkipDir
		}
		if rel, _ := filepath.Rel(root, p); !d.IsDir() && re.MatchString(filepath.ToSlash(rel)) {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}
