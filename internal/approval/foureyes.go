package approval

import (
	"net/mail"
	"strings"
)

// IsAuthor reports whether the person the API server calls username may
// be the author of a commit ("Name <email>", as Git and keyless's history
// write it): four eyes refuse their approval. The match is deliberately
// wide, since names are not shared between the forge and the cluster: the
// username (with an authenticator prefix such as "oidc:" dropped) equal
// to the author's email, to its local part, or to the author's name, all
// without regard to case. An empty author (a revision without a commit,
// such as a chart from a Helm repository) matches nobody.
func IsAuthor(username, author string) bool {
	author = strings.TrimSpace(author)
	if author == "" || username == "" {
		return false
	}
	user := strings.ToLower(username)
	if i := strings.LastIndexByte(user, ':'); i >= 0 && !strings.HasPrefix(user, "system:") {
		user = user[i+1:]
	}
	name, email := author, ""
	if a, err := mail.ParseAddress(author); err == nil {
		name, email = a.Name, a.Address
	} else if i := strings.IndexByte(author, '<'); i >= 0 {
		name, email = strings.TrimSpace(author[:i]), strings.Trim(author[i:], "<> ")
	}
	candidates := []string{strings.ToLower(strings.TrimSpace(name))}
	if email = strings.ToLower(email); email != "" {
		candidates = append(candidates, email)
		if local, _, ok := strings.Cut(email, "@"); ok {
			candidates = append(candidates, local)
		}
	}
	for _, c := range candidates {
		if c != "" && c == user {
			return true
		}
	}
	return false
}
