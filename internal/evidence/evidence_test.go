package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/ledger"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// auditLine is one line as the API server's --audit-log-path writes it
// (audit.k8s.io/v1 Event, Metadata level).
func auditLine(id, verb, user, as, resource, ns, name string, code int, at time.Time, uri string) string {
	e := map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": id, "stage": "ResponseComplete",
		"requestURI": uri, "verb": verb, "user": map[string]any{"username": user, "groups": []string{"system:authenticated"}},
		"objectRef":                objectRef(resource, ns, name),
		"responseStatus":           map[string]any{"metadata": map[string]any{}, "code": code},
		"requestReceivedTimestamp": at.Add(-time.Millisecond).Format("2006-01-02T15:04:05.000000Z07:00"),
		"stageTimestamp":           at.Format("2006-01-02T15:04:05.000000Z07:00"),
	}
	if as != "" {
		e["impersonatedUser"] = map[string]any{"username": as}
	}
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// objectRef is an audit objectRef; resource may name a subresource
// ("deployments/scale").
func objectRef(resource, ns, name string) map[string]any {
	res, sub, _ := strings.Cut(resource, "/")
	ref := map[string]any{"resource": res, "namespace": ns, "name": name, "apiVersion": "v1"}
	if sub != "" {
		ref["subresource"] = sub
	}
	return ref
}

const deployer = "system:serviceaccount:shop:keyless-deployer"

func TestReadAuditLog(t *testing.T) {
	lines := []string{
		auditLine("1", "patch", "system:serviceaccount:keyless-system:keyless-controller", deployer, "configmaps", "shop", "web", 200, t0, "/api/v1/namespaces/shop/configmaps/web?fieldManager=keyless"),
		auditLine("2", "patch", "system:serviceaccount:keyless-system:keyless-controller", deployer, "configmaps", "shop", "web", 200, t0, "/api/v1/namespaces/shop/configmaps/web?dryRun=All&fieldManager=keyless"),
		auditLine("3", "get", "alice", "", "configmaps", "shop", "web", 200, t0, "/api/v1/namespaces/shop/configmaps/web"),
		auditLine("4", "update", "alice", "", "deployments", "shop", "web", 409, t0, "/apis/apps/v1/namespaces/shop/deployments/web"),
		auditLine("5", "update", "alice", "", "deployments", "other", "web", 200, t0, "/apis/apps/v1/namespaces/other/deployments/web"),
		auditLine("6", "delete", "alice", "", "secrets", "shop", "token", 200, t0.Add(-48*time.Hour), "/api/v1/namespaces/shop/secrets/token"),
		"not json",
		`{"kind":"Status"}`,
		`{"kind":"Event","stage":"ResponseStarted","verb":"patch"}`,
		auditLine("7", "update", "alice", "", "deployments/scale", "shop", "web", 200, t0.Add(time.Minute), "/apis/apps/v1/namespaces/shop/deployments/web/scale"),
		strings.Repeat("x", MaxAuditLine+10),
	}
	writes, skipped, err := ReadAuditLog(strings.NewReader(strings.Join(lines, "\n")), "shop", t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, w := range writes {
		ids = append(ids, w.AuditID)
	}
	// 1: a write as the deployer; 7: alice's; not the dry run (2), the read (3),
	// the refused write (4), another namespace (5), one outside the window (6).
	if got := strings.Join(ids, ","); got != "1,7" {
		t.Fatalf("writes %s, want 1,7", got)
	}
	if writes[0].Identity() != deployer || writes[1].Identity() != "alice" || writes[1].Resource != "deployments/scale" {
		t.Errorf("writes %+v", writes)
	}
	if skipped != 3 { // not json, not an Event, the line over MaxAuditLine
		t.Errorf("skipped %d lines, want 3", skipped)
	}
}

func record(seq int64, at time.Time, app string, changes ...string) ledger.Record {
	return ledger.Record{Seq: seq, Time: at, Kind: ledger.KindSync, Namespace: "shop", App: app, Revision: fmt.Sprintf("%040d", seq),
		Author: "Dev <dev@example.com>", Result: "Succeeded", Deployer: deployer, Changes: changes}
}

// TestReconcile: a deployer's write is the record's that lists its object
// and was written after it; a deployer's write no record lists, and any
// other identity's, are named.
func TestReconcile(t *testing.T) {
	p := NewPack("ledger.jsonl", Options{Namespace: "shop", Now: t0})
	for _, r := range []ledger.Record{
		record(1, t0.Add(2*time.Second), "web", "ConfigMap/web configured", "Deployment/web configured", "NetworkPolicy/web created"),
		record(2, t0.Add(10*time.Minute), "api", "Ingress/api created"),
		{Seq: 3, Time: t0, Namespace: "other", App: "x", Deployer: "system:serviceaccount:other:keyless-deployer", Changes: []string{"ConfigMap/web configured"}},
		record(4, t0.Add(30*time.Second), "web", "ConfigMap/web configured"),
	} {
		if err := p.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	w := func(id, as, user, resource, name string, at time.Time) Write {
		return Write{AuditID: id, As: as, User: user, Verb: "patch", Resource: resource, Namespace: "shop", Name: name, Time: at}
	}
	p.Reconcile("audit.log", []Write{
		w("a", deployer, "controller", "configmaps", "web", t0.Add(time.Second)),
		w("b", deployer, "controller", "deployments", "web", t0.Add(time.Second)),
		w("c", deployer, "controller", "networkpolicies", "web", t0.Add(time.Second)),
		w("d", deployer, "controller", "ingresses", "api", t0.Add(9*time.Minute)),
		w("e", deployer, "controller", "configmaps", "unlisted", t0.Add(time.Second)),                          // no record lists it
		w("f", deployer, "controller", "ingresses", "api", t0.Add(11*time.Minute)),                             // after its record: another sync
		w("g", deployer, "controller", "configmaps", "web", t0.Add(-2*time.Hour)),                              // long before any record
		w("h", "", "alice", "deployments", "web", t0.Add(time.Minute)),                                         // a person
		w("i", "", "system:serviceaccount:kube-system:deployment-controller", "deployments/status", "web", t0), // kube-controller-manager
		w("j", deployer, "controller", "configmaps", "web", t0.Add(3*time.Second)),                             // just after record 1: the next sync's
	}, 0)
	a := p.Audit
	if a.Matched != 5 || len(p.Changes[0].Writes) != 3 || len(p.Changes[1].Writes) != 1 || strings.Join(p.Changes[2].Writes, ",") != "j" {
		t.Fatalf("matched %d; change writes %v %v %v", a.Matched, p.Changes[0].Writes, p.Changes[1].Writes, p.Changes[2].Writes)
	}
	if got := ids(a.WithoutRecord); got != "e,f,g" {
		t.Errorf("without record %s, want e,f,g", got)
	}
	if got := ids(a.Outside); got != "h,i" {
		t.Errorf("outside %s, want h,i", got)
	}
}

func ids(ws []Write) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.AuditID)
	}
	return strings.Join(out, ",")
}

func TestPackWindowAndControls(t *testing.T) {
	p := NewPack("l", Options{From: t0, To: t0.Add(time.Hour), Now: t0})
	approved := record(2, t0.Add(time.Minute), "web")
	approved.ApprovedBy = "Reviewer <r@example.com>"
	for _, r := range []ledger.Record{record(1, t0.Add(-time.Second), "web"), approved, record(3, t0.Add(2*time.Hour), "web")} {
		_ = p.Add(r)
	}
	last := record(3, t0.Add(2*time.Hour), "web")
	last.Hash = "abc"
	p.Verified(3, &last)
	if len(p.Changes) != 1 || p.Changes[0].Seq != 2 || p.Ledger.Records != 3 || p.Ledger.LastHash != "abc" {
		t.Fatalf("pack %+v", p)
	}
	if got := strings.Join(p.Changes[0].Controls, ","); !strings.Contains(got, ControlFours) || !strings.Contains(got, ControlDORA) {
		t.Errorf("controls %s", got)
	}
}

// TestReportEscapes: names from Git and the cluster cannot break the
// report's tables or inject HTML.
func TestReportEscapes(t *testing.T) {
	p := NewPack("l", Options{Now: t0})
	r := record(1, t0, "web")
	r.Author = "Mallory | <script>alert(1)</script>\n| forged | row |"
	r.Changes = []string{"ConfigMap/a|b configured"}
	_ = p.Add(r)
	p.Reconcile("audit.log", []Write{{AuditID: "x", User: "eve\n| fake", Verb: "patch", Resource: "configmaps", Namespace: "shop", Name: "n|m", Time: t0}}, 0)
	var b bytes.Buffer
	if err := WriteMarkdown(&b, p); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "<script>") || strings.Contains(out, "\n| forged") || strings.Contains(out, "\n| fake") {
		t.Fatalf("the report let a crafted name through:\n%s", out)
	}
	for _, want := range []string{`Mallory \| &lt;script&gt;`, `n\|m`, "## Writes outside keyless (1)", "| DORA-9(4)(e)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
}

func FuzzReadAuditLog(f *testing.F) {
	f.Add(auditLine("1", "patch", "u", deployer, "configmaps", "shop", "web", 200, t0, "/x"))
	f.Add(`{"kind":"Event","stage":"ResponseComplete","verb":"create","objectRef":{"namespace":"shop"},"responseStatus":{"code":201}}`)
	f.Add("\n\n{}")
	f.Fuzz(func(t *testing.T, log string) {
		writes, _, err := ReadAuditLog(strings.NewReader(log), "", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err) // a readable string is never an error, only skipped lines
		}
		for _, w := range writes {
			if w.Namespace == "" {
				t.Fatalf("a write with no namespace: %+v", w)
			}
		}
	})
}

// TestOverridesAndPausesShow: an override's and a pause's records say
// who, why and which window or until when, in the pack and the report.
func TestOverridesAndPausesShow(t *testing.T) {
	p := NewPack("l", Options{Now: t0})
	_ = p.Add(ledger.Record{Seq: 1, Time: t0, Kind: ledger.KindOverride, Namespace: "shop", App: "web", By: "bob@example.com", Reason: "INC-42", Window: "deny * * * * * for 2h (UTC)"})
	_ = p.Add(ledger.Record{Seq: 2, Time: t0, Kind: ledger.KindPause, Namespace: "shop", App: "web", By: "alice", Reason: "INC-43", Until: t0.Add(30 * time.Minute)})
	var b bytes.Buffer
	if err := WriteMarkdown(&b, p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sync window deny * * * * * for 2h (UTC) overridden by bob@example.com: INC-42",
		"self-heal paused until 2026-12-07T10:30:00Z by alice: INC-43", "1 pause(s) of self-heal"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, b.String())
		}
	}
	if p.Changes[1].Until != t0.Add(30*time.Minute) || p.Changes[0].By != "bob@example.com" {
		t.Errorf("changes %+v", p.Changes)
	}
}

// TestForgeApprovalsShow: an approval record and the sync it let through
// show the approvers and the pull request, and evidence four eyes.
func TestForgeApprovalsShow(t *testing.T) {
	p := NewPack("l", Options{Now: t0})
	pr := "https://gitea.example/team/web/pulls/7"
	_ = p.Add(ledger.Record{Seq: 1, Time: t0, Kind: ledger.KindApproval, Namespace: "shop", App: "web", Revision: "0123456789abcdef0123456789abcdef01234567",
		Approvers: []string{"bob", "carol"}, PullRequest: pr})
	_ = p.Add(ledger.Record{Seq: 2, Time: t0, Kind: ledger.KindSync, Namespace: "shop", App: "web", Revision: "0123456789abcdef0123456789abcdef01234567",
		Author: "alice", Result: "Succeeded", Approvers: []string{"bob", "carol"}, PullRequest: pr})
	var b bytes.Buffer
	if err := WriteMarkdown(&b, p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"approved at the forge in " + pr, "bob, carol (" + pr + ")", "1 approved by a person"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, b.String())
		}
	}
	for i, c := range p.Changes {
		if !slices.Contains(c.Controls, ControlFours) {
			t.Errorf("change %d controls %v: want four-eyes", i, c.Controls)
		}
	}
}
