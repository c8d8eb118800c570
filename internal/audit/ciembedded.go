package audit

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// heredocStart opens a shell heredoc: <<EOF, <<-'EOF', << "END".
var heredocStart = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_]\w*)['"]?`)

// maxEmbedded bounds how many block scalars and heredocs of one file are parsed.
const maxEmbedded = 200

// embeddedFindings scans the kubeconfigs and token Secrets written inside a
// CI file — in a YAML block scalar (a `run: |` step, a `with:` value) or a
// shell heredoc — as if they were files, reported at their line in the file.
func embeddedFindings(name string, data []byte, lines []string) []Finding {
	var out []Finding
	seen := 0
	add := func(text string, firstLine int) {
		if seen >= maxEmbedded || !bytes.Contains([]byte(text), []byte("kind:")) {
			return
		}
		seen++
		for _, f := range scanYAML(name, []byte(text)) {
			f.Line += firstLine - 1
			f.Severity = Critical // handed to a job: the same credential as a committed file
			out = append(out, f)
		}
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil {
		walkScalars(&doc, func(n *yaml.Node) {
			if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				add(n.Value, n.Line+1)
			}
		})
	}
	for i := 0; i < len(lines); i++ {
		m := heredocStart.FindStringSubmatch(lines[i])
		if m == nil || comment(lines[i]) {
			continue
		}
		start := i + 1
		j := start
		for j < len(lines) && strings.TrimSpace(lines[j]) != m[1] {
			j++
		}
		add(dedent(lines[start:j]), start+1)
		i = j
	}
	return dedupe(out)
}

func walkScalars(n *yaml.Node, fn func(*yaml.Node)) {
	if n.Kind == yaml.ScalarNode {
		fn(n)
	}
	for _, c := range n.Content {
		walkScalars(c, fn)
	}
}

// dedent removes the indentation common to lines (a heredoc inside a YAML
// block keeps the block's).
func dedent(lines []string) string {
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if len(l) >= indent && indent > 0 {
			l = l[indent:]
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// dedupe drops a finding repeated at the same rule, file and line (a
// heredoc inside a block scalar is seen by both scans).
func dedupe(fs []Finding) []Finding {
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		k := fmt.Sprintf("%s|%s|%d", f.Rule, f.File, f.Line)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	return out
}
