package version

import "regexp"

// release is a tag `make release` accepts: vMAJOR.MINOR.PATCH with an
// optional pre-release of dot-separated identifiers (v1.2.3-rc.1). A hyphen
// inside the pre-release is refused on purpose: it is what tells a release
// from `git describe` after a tag (v1.2.3-4-gabcdef0) and from a Go
// pseudo-version (v0.0.0-20260101000000-abcdef012345), neither of which has
// a published image.
var release = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$`)

// IsRelease tells whether v is a released version: one `make release`
// builds, with binaries, an image and a chart published under that tag.
func IsRelease(v string) bool { return release.MatchString(v) }

// Released tells whether this binary is a release (Version is one).
func Released() bool { return IsRelease(Version()) }
