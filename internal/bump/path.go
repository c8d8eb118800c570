// Package bump changes values in YAML files byte-for-byte (only the bytes of
// the changed scalars change) and commits and pushes the change race-free:
// the CI half of the GitOps path.
package bump

import (
	"fmt"
	"strconv"
	"strings"
)

// Segment is one step of a path: a mapping key or a sequence index.
type Segment struct {
	Key   string
	Index int
	IsIdx bool
}

func (s Segment) String() string {
	if s.IsIdx {
		return "[" + strconv.Itoa(s.Index) + "]"
	}
	if strings.ContainsAny(s.Key, ".[]\"' ") {
		return strconv.Quote(s.Key)
	}
	return s.Key
}

// Path is a parsed value path like image.tag, containers[0].image or
// metadata.labels."app.kubernetes.io/version".
type Path []Segment

func (p Path) String() string {
	var b strings.Builder
	for i, s := range p {
		if i > 0 && !s.IsIdx {
			b.WriteByte('.')
		}
		b.WriteString(s.String())
	}
	return b.String()
}

// ParsePath parses a dot path with [N] indices and "quoted" or 'quoted' keys.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return nil, fmt.Errorf("empty path")
	}
	var p Path
	i := 0
	expectKey := true
	for i < len(s) {
		switch c := s[i]; c {
		case '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("path %q: unclosed [", s)
			}
			n, err := strconv.Atoi(s[i+1 : i+end])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("path %q: index %q is not a non-negative number", s, s[i+1:i+end])
			}
			p = append(p, Segment{Index: n, IsIdx: true})
			i += end + 1
			expectKey = false
		case '.':
			if expectKey {
				return nil, fmt.Errorf("path %q: empty key at offset %d", s, i)
			}
			i++
			expectKey = true
		case '"', '\'':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("path %q: unclosed quote", s)
			}
			p = append(p, Segment{Key: s[i+1 : i+1+end]})
			i += end + 2
			expectKey = false
		default:
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			p = append(p, Segment{Key: s[i:j]})
			i = j
			expectKey = false
		}
	}
	if expectKey {
		return nil, fmt.Errorf("path %q ends with a dot", s)
	}
	return p, nil
}
