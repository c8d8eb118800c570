package audit

import (
	"path"
	"regexp"
	"strings"
)

// azureShape: an Azure Pipelines definition under any name has a trigger,
// pool or stages key at the top and task steps.
var (
	azureTop  = regexp.MustCompile(`(?m)^(?:trigger|pr|pool|stages|jobs|steps|variables):`)
	azureTask = regexp.MustCompile(`(?m)^\s*-\s*(?:task|script|bash|powershell):`)
)

// isCIByContent reports a CI definition recognised by its shape rather than
// its name: Azure Pipelines YAML (trigger:/pool:/steps: with - task: or
// - script: steps).
func isCIByContent(name string, data []byte) bool {
	lower := strings.ToLower(name)
	if !strings.HasSuffix(lower, ".yml") && !strings.HasSuffix(lower, ".yaml") {
		return false
	}
	return len(azureTop.FindAll(data, 2)) >= 2 && azureTask.Match(data) && strings.Contains(string(data), "steps:")
}

// scriptCall: a shell script a CI file runs: ./deploy.sh, sh scripts/x.sh,
// bash -e ci/deploy.sh, source ci/env.sh.
var scriptCall = regexp.MustCompile(`(?:^|[\s;&|('"])(?:(?:ba|z|da)?sh\s+(?:-\w+\s+)*|source\s+|\.\s+)?((?:\./|[\w.-]+/)*[\w.-]+\.sh)\b`)

// ciScripts remembers the shell scripts of a repository and which of them
// a CI file runs, to scan those with the CI rules.
type ciScripts struct {
	data   map[string][]byte
	calls  map[string]bool
	budget int
}

// maxScriptBytes bounds the script text kept during one scan.
const maxScriptBytes = 32 << 20

func newCIScripts() *ciScripts {
	return &ciScripts{data: map[string][]byte{}, calls: map[string]bool{}, budget: maxScriptBytes}
}

// keep holds a shell script's text for scan.
func (s *ciScripts) keep(name string, data []byte) {
	if strings.HasSuffix(name, ".sh") && len(data) <= s.budget {
		s.data[name] = data
		s.budget -= len(data)
	}
}

// called records the scripts ciFile runs, relative to the repository root
// (where CI jobs start) and to the CI file's folder; never above the root.
func (s *ciScripts) called(ciFile string, data []byte) {
	for _, l := range strings.Split(string(data), "\n") {
		if comment(l) {
			continue
		}
		for _, m := range scriptCall.FindAllStringSubmatch(l, -1) {
			for _, p := range []string{path.Clean(m[1]), path.Clean(path.Join(path.Dir(ciFile), m[1]))} {
				if !strings.HasPrefix(p, "../") && p != ".." && !path.IsAbs(p) {
					s.calls[p] = true
				}
			}
		}
	}
}

// scan runs the CI rules over every script a CI file runs, reported at
// the script's own lines.
func (s *ciScripts) scan() []Finding {
	var out []Finding
	for name := range s.calls {
		if data, ok := s.data[name]; ok {
			out = append(out, scanCI(name, data)...)
		}
	}
	return out
}
