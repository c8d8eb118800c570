package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

// ledgerOf is a ledger of n records: syncs, with an approval second and
// an override fourth (three syncs, an approval and an override for n=5).
func ledgerOf(t *testing.T, key ed25519.PrivateKey, n int) []string {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, key, nil)
	for i := range n {
		rec := Record{Time: time.Date(2026, 12, 6, 10, i, 0, 0, time.UTC), Kind: KindSync, Namespace: "team", App: "web",
			Revision: strings.Repeat("a", 39) + string(rune('0'+i)), Result: "Succeeded", Changes: []string{"Deployment/web configured uid=1234 resourceVersion=42"},
			RenderedDigest: "sha256:" + strings.Repeat("b", 64), DryRun: "Passed"}
		switch i {
		case 1:
			rec = Record{Time: rec.Time, Kind: KindApproval, Namespace: "team", App: "web", Revision: rec.Revision, Approvers: []string{"bob", "carol"},
				PullRequest: "https://gitea.example/team/web/pulls/7"}
		case 3:
			rec = Record{Time: rec.Time, Kind: KindOverride, Namespace: "team", App: "web", By: "ada@example.com", Reason: "INC-9", Window: "deny 0 22 * * 5 for 60h (UTC)"}
		}
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	return lines[:len(lines)-1]
}

func TestVerify(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	lines := ledgerOf(t, key, 5) // three syncs, an approval, an override
	last, n, err := Verify(strings.NewReader(strings.Join(lines, "")), pub)
	if err != nil || n != 5 || last.Seq != 5 {
		t.Fatalf("an intact ledger: %v, %d records, last %+v", err, n, last)
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name  string
		lines []string
		pub   ed25519.PublicKey
		line  int
		why   string
	}{
		{"one byte edited", replace(lines, 2, strings.Replace(lines[2], "Succeeded", "Succeedex", 1)), pub, 3, "edited"},
		{"a record removed", append(append([]string{}, lines[:1]...), lines[2:]...), pub, 2, "removed"},
		{"two records swapped", []string{lines[0], lines[2], lines[1], lines[3], lines[4]}, pub, 2, "removed or moved"},
		{"the approval edited", replace(lines, 1, strings.Replace(lines[1], "carol", "carl", 1)), pub, 2, "edited"},
		{"the override removed", append(append([]string{}, lines[:3]...), lines[4:]...), pub, 4, "removed"},
		{"another key", lines, otherPub, 1, "signature"},
		{"a line that is not a record", replace(lines, 1, "{not json\n"), pub, 2, "not a record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Verify(strings.NewReader(strings.Join(tc.lines, "")), tc.pub)
			var be *BrokenError
			if !errors.As(err, &be) || !errors.Is(err, ErrBroken) || be.Line != tc.line || !strings.Contains(be.Reason, tc.why) {
				t.Fatalf("Verify = %v, want line %d broken (%s)", err, tc.line, tc.why)
			}
		})
	}
	t.Run("a chain continued after a restart verifies", func(t *testing.T) {
		var buf bytes.Buffer
		buf.WriteString(strings.Join(lines, ""))
		w := NewWriter(&buf, key, last)
		if err := w.Append(Record{Kind: KindSync, Namespace: "team", App: "web"}); err != nil {
			t.Fatal(err)
		}
		if _, n, err := Verify(&buf, pub); err != nil || n != 6 {
			t.Fatalf("continued ledger: %v, %d", err, n)
		}
	})
}

func replace(lines []string, i int, s string) []string {
	out := append([]string{}, lines...)
	out[i] = s
	return out
}

func FuzzVerify(f *testing.F) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	var buf bytes.Buffer
	w := NewWriter(&buf, key, nil)
	_ = w.Append(Record{Kind: KindSync, Namespace: "a", App: "b"})
	f.Add(buf.Bytes())
	f.Add([]byte("{}\n{\"seq\":1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = Verify(bytes.NewReader(data), pub)
	})
}
