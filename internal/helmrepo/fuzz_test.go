package helmrepo

import (
	"bytes"
	"testing"
)

// FuzzParseDependencies feeds crafted Chart.yaml and Chart.lock files to
// the parsers Dependencies uses: they must not panic, and a lock matching
// its Chart.yaml must name only valid chart names.
func FuzzParseDependencies(f *testing.F) {
	f.Add([]byte("apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - name: lib\n    version: ~0.1.0\n    repository: https://charts.example.com\n"),
		[]byte("dependencies:\n- name: lib\n  repository: https://charts.example.com\n  version: 0.1.1\ndigest: sha256:0000\ngenerated: \"2026-01-01T00:00:00Z\"\n"))
	f.Add([]byte("name: old\nversion: 1.0.0\n"), []byte("dependencies: []\n"))
	f.Add([]byte("dependencies: [{name: ../x, repository: \"@stable\"}]"), []byte("digest: x"))
	f.Fuzz(func(t *testing.T, chartYAML, lockYAML []byte) {
		meta, err := parseChartYAML(chartYAML)
		if err != nil {
			return
		}
		lock, err := parseLock(lockYAML)
		if err != nil {
			return
		}
		if lockMatches(meta, lock) {
			for _, d := range lock.Dependencies {
				if !validChartName(d.Name) {
					t.Fatalf("a matching lock names %q", d.Name)
				}
			}
		}
	})
}

// FuzzLookupTable reads crafted compact index tables: no panic, and a
// chart found is the one asked for's versions.
func FuzzLookupTable(f *testing.F) {
	f.Add([]byte(`{"lib":[{"v":"0.1.0","d":"abc","u":["lib-0.1.0.tgz"]}],"app":[]}`), "lib")
	f.Add([]byte(`{"a":{"nested":[1,2,{"x":"y"}]},"lib":null}`), "lib")
	f.Add([]byte(`[]`), "lib")
	f.Fuzz(func(t *testing.T, table []byte, chart string) {
		_, _ = lookupTable(bytes.NewReader(table), chart)
	})
}
