package preview_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/preview"
)

func hostileReport() *preview.Report {
	return &preview.Report{
		Base: preview.Commit{Revision: "main", SHA: "1111111111111111111111111111111111111111"},
		Head: preview.Commit{Revision: "HEAD", SHA: "2222222222222222222222222222222222222222"},
		Applications: []preview.AppReport{{
			Application: `team-a/<script>alert(1)</script>|x`, State: preview.AppChanged, Source: "apps/a.yaml:1", Path: "deploy",
			Changes: []preview.Change{{
				Action: preview.Changed, APIVersion: "v1", Kind: "ConfigMap", Name: `"><img src=x onerror=alert(1)>`,
				Diff: "--- base/configmap/x\n+++ head/configmap/x\n@@ -1 +1 @@\n-a: ````\n+a: ```\n</details><script>alert(2)</script>\n",
			}},
		}},
		Warnings: []string{"apps/b.yaml:3: Application <b> not previewed"},
	}
}

func TestMarkdownEscapesWhatComesFromGit(t *testing.T) {
	var out bytes.Buffer
	if err := preview.WriteReport(&out, hostileReport(), preview.FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	md := out.String()
	for _, raw := range []string{"<script>alert(1)", "<img src=x", "<b>"} {
		if strings.Contains(md, raw) {
			t.Errorf("markdown holds unescaped %q:\n%s", raw, md)
		}
	}
	if !strings.Contains(md, "&lt;/script&gt;&#124;x</code> | changed |") {
		t.Errorf("a pipe in a name breaks the table:\n%s", md)
	}
	// The diff's own text stays verbatim inside a fence longer than any
	// backtick run of it, so it cannot close the fence or the details.
	if !strings.Contains(md, "`````diff\n") || !strings.Contains(md, "</details><script>alert(2)</script>\n`````\n") {
		t.Errorf("diff not fenced by five backticks:\n%s", md)
	}
}

func TestMarkdownStaysCommentSized(t *testing.T) {
	rep := hostileReport()
	a := &rep.Applications[0]
	a.Changes = nil
	for i := range 200 {
		a.Changes = append(a.Changes, preview.Change{Action: preview.Added, APIVersion: "v1", Kind: "ConfigMap", Name: fmt.Sprintf("cm-%d", i),
			Diff: strings.Repeat("+  key: value\n", 40)})
	}
	var out bytes.Buffer
	if err := preview.WriteReport(&out, rep, preview.FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	if out.Len() > preview.MarkdownLimit+1000 {
		t.Errorf("markdown is %d bytes, want about %d at most", out.Len(), preview.MarkdownLimit)
	}
	if !strings.Contains(out.String(), "diffs left out to keep this comment short") || !strings.Contains(out.String(), "| 200 | 0 | 0 |") {
		t.Errorf("a long report does not say what it left out or lost its counts:\n%s", out.String()[:500])
	}
}

func TestUnknownFormat(t *testing.T) {
	if err := preview.WriteReport(&bytes.Buffer{}, hostileReport(), "yaml"); err == nil {
		t.Error("format yaml accepted")
	}
}
