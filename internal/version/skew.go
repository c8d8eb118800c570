package version

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
)

// Skew compares this binary's version (client) with a version found in the
// cluster (what: "controller", "CRD") and returns a warning when they are not
// the same minor release, or when one of them is not a release; "" when
// they match or the cluster's is unknown ("").
func Skew(client, what, other string) string {
	if other == "" || other == client {
		return ""
	}
	c, errC := semver.StrictNewVersion(trimV(client))
	o, errO := semver.StrictNewVersion(trimV(other))
	switch {
	case errC != nil && errO != nil:
		return fmt.Sprintf("the client (%s) and the %s (%s) are development builds of different versions", client, what, other)
	case errC != nil:
		return fmt.Sprintf("the client is a development build (%s); the %s is %s: use the released CLI of that version", client, what, other)
	case errO != nil:
		return fmt.Sprintf("the %s is a development build (%s); the client is %s", what, other, client)
	case c.Major() != o.Major() || c.Minor() != o.Minor():
		newer := "the client is newer: upgrade the cluster with `keyless install` of this version"
		if o.GreaterThan(c) {
			newer = "the " + what + " is newer: use the CLI of version " + other
		}
		return fmt.Sprintf("the client (%s) and the %s (%s) are different minor releases; %s", client, what, other, newer)
	}
	return ""
}

func trimV(v string) string {
	if len(v) > 0 && v[0] == 'v' {
		return v[1:]
	}
	return v
}
