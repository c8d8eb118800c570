package forge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// ErrApprovalMissing is a revision the forge's record does not show
// approved as the rule asks: a direct push, too few approvals by people
// other than the change's authors and merger, approvals of an older head.
// Only a new revision, new approvals or a rule change alter it.
var ErrApprovalMissing = errors.New("approval missing")

// ChangeRequest is how a commit reached a branch, as the forge records it:
// the merged pull/merge request whose merge produced the commit.
type ChangeRequest struct {
	// Number is the request's number (GitLab: its iid); URL its web page.
	Number int64
	URL    string
	// Author opened it; Merger merged it (forge logins).
	Author, Merger string
	// CommitAuthors are the authors of its commits.
	CommitAuthors []Person
	// Head is the final head commit that was merged.
	Head string
	// Reviews are its reviews, oldest first.
	Reviews []Review
	// LinksAuthors says the forge links commit authors to its users
	// (Gitea, Forgejo, GitHub): an author it links to none is refused,
	// since nothing tells them apart from an approver. GitLab links none;
	// its commit authors are matched by name and e-mail address.
	LinksAuthors bool
}

// Person is someone a forge names: a login, and where the forge links no
// user to a commit, only the name and e-mail address written in it.
type Person struct {
	Login, Name, Email string
}

// ReviewState is a review's verdict, in keyless's words.
type ReviewState string

// Review states; other verdicts (comments, pending reviews) change nothing.
const (
	ReviewApproved         ReviewState = "approved"
	ReviewChangesRequested ReviewState = "changes-requested"
	ReviewDismissed        ReviewState = "dismissed"
	ReviewOther            ReviewState = ""
)

// Review is one review of a ChangeRequest.
type Review struct {
	By Person
	// State is its verdict.
	State ReviewState
	// Commit is the head it was made on; "" when the forge does not say
	// (GitLab: OnHead says it instead).
	Commit string
	// OnHead is set by a client that decided from times (GitLab: approved
	// after the final head was pushed) rather than from Commit.
	OnHead bool
	// Stale is the forge's own mark of a review made before new commits.
	Stale bool
}

// Approval is a ChangeRequest that meets a rule.
type Approval struct {
	// Approvers are the people counted, in the order they approved.
	Approvers []string
	// Request is the change request's URL (or #number).
	Request string
}

// Check decides whether cr shows commit sha approved by at least min
// people other than its authors (the opener and the commits' authors) and
// its merger, on its final head. A refusal wraps ErrApprovalMissing and
// says what is missing and why each review did not count.
func (cr *ChangeRequest) Check(sha, branch string, minApprovers int) (Approval, error) {
	ref := cr.ref()
	out := Approval{Request: ref}
	if minApprovers < 1 {
		minApprovers = 1
	}
	authors := append([]Person{{Login: cr.Author}}, cr.CommitAuthors...)
	var refused []string
	for _, a := range cr.CommitAuthors {
		switch {
		case a.Login == "" && a.Email == "" && a.Name == "":
			refused = append(refused, "a commit names no author")
		case a.Login == "" && cr.LinksAuthors:
			refused = append(refused, fmt.Sprintf("the commit author %s <%s> is no user of the forge, so they cannot be told apart from an approver", a.Name, a.Email))
		}
	}
	latest := map[string]Review{}
	var order []string
	for _, rv := range cr.Reviews {
		key := strings.ToLower(rv.By.Login)
		if key == "" || rv.State == ReviewOther {
			continue
		}
		if _, seen := latest[key]; !seen {
			order = append(order, key)
		}
		latest[key] = rv
	}
	var why []string
	for _, key := range order {
		rv := latest[key]
		who := rv.By.Login
		switch {
		case rv.State == ReviewChangesRequested:
			why = append(why, who+" requested changes")
		case rv.State == ReviewDismissed:
			why = append(why, who+"'s approval was dismissed")
		case samePerson(rv.By, Person{Login: cr.Merger}):
			why = append(why, who+" merged it")
		case slices.ContainsFunc(authors, func(a Person) bool { return samePerson(rv.By, a) }):
			why = append(why, who+" is an author of the change")
		case rv.Stale || !rv.on(cr.Head):
			on := "before the final head was pushed (or the forge does not say when)"
			if rv.Commit != "" {
				on = kv1.ShortSHA(rv.Commit) + ", not the final head " + kv1.ShortSHA(cr.Head)
			}
			why = append(why, who+" approved "+on)
		default:
			out.Approvers = append(out.Approvers, who)
		}
	}
	if len(refused) == 0 && len(out.Approvers) >= minApprovers {
		return out, nil
	}
	msg := fmt.Sprintf("commit %s reached %s through %s with %d of %d approvals needed on its final head %s by people other than its authors (%s) and its merger (%s)",
		kv1.ShortSHA(sha), branch, ref, len(out.Approvers), minApprovers, kv1.ShortSHA(cr.Head), cr.authorList(), orNone(cr.Merger))
	if len(out.Approvers) > 0 {
		msg += "; counted: " + strings.Join(out.Approvers, ", ")
	}
	if len(why) > 0 {
		msg += "; not counted: " + strings.Join(why, "; ")
	}
	if len(refused) > 0 {
		msg += "; " + strings.Join(slices.Compact(refused), "; ")
	}
	return out, fmt.Errorf("%w: %s", ErrApprovalMissing, msg)
}

// NoChangeRequest is the refusal of a commit no merged request produced.
func NoChangeRequest(sha, branch string) error {
	return fmt.Errorf("%w: commit %s did not reach %s through a merged pull/merge request (a direct push?), so nobody approved it", ErrApprovalMissing, kv1.ShortSHA(sha), orNone(branch))
}

func (cr *ChangeRequest) ref() string {
	if cr.URL != "" {
		return cr.URL
	}
	return fmt.Sprintf("#%d", cr.Number)
}

// authorList names the change's authors once each.
func (cr *ChangeRequest) authorList() string {
	var names []string
	for _, p := range append([]Person{{Login: cr.Author}}, cr.CommitAuthors...) {
		n := cmpOr(p.Login, p.Email, p.Name)
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return orNone(strings.Join(names, ", "))
}

// samePerson reports whether a reviewer is p: the same login, or where p
// has no login (a commit the forge links to no user), the same e-mail
// address or name.
func samePerson(reviewer, p Person) bool {
	eq := func(a, b string) bool {
		return a != "" && strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
	}
	return eq(reviewer.Login, p.Login) || eq(reviewer.Email, p.Email) || eq(reviewer.Name, p.Name)
}

func cmpOr(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// reviewAfter reports whether a review at approved was made after the head
// was pushed at pushed (both known).
func reviewAfter(approved, pushed time.Time) bool {
	return !approved.IsZero() && !pushed.IsZero() && !approved.Before(pushed)
}

// on reports whether the review was made on head (by its commit, or by
// the client's decision from times).
func (rv Review) on(head string) bool {
	return rv.OnHead || (rv.Commit != "" && rv.Commit == head)
}
