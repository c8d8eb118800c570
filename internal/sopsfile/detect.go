package sopsfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// maxDetectDocuments bounds the YAML documents looked at for SOPS metadata
// (a file is bounded in size by its reader; this bounds the work on one made
// of many tiny documents).
const maxDetectDocuments = 10000

// IsEncrypted says whether data, the content of the file called name,
// carries SOPS metadata: a top-level "sops" mapping with a "mac" in any
// YAML document, in a JSON object (also the binary format), a sops_mac=
// line of a dotenv file, or a [sops] section with a mac key of an INI file.
// It is cheap for files that do not mention "sops" at all, and never fails:
// unreadable input is not encrypted (the renderer reports it as it would).
func IsEncrypted(name string, data []byte) bool {
	if !bytes.Contains(data, []byte("sops")) || !bytes.Contains(data, []byte("mac")) {
		return false
	}
	switch FormatOf(name) {
	case FormatYAML:
		return yamlHasMetadata(data)
	case FormatDotenv:
		return dotenvHasMetadata(data)
	case FormatINI:
		return iniHasMetadata(data)
	}
	if jsonHasMetadata(data) {
		return true
	}
	// A kustomize generator or a values file may carry a YAML SOPS file
	// under another name; the binary store would not read it, so neither
	// would the sops CLI: not encrypted as far as the format goes.
	return false
}

func yamlHasMetadata(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for range maxDetectDocuments {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return false // io.EOF, or not YAML at all
		}
		if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
			continue
		}
		if metadata := mappingValue(doc.Content[0], "sops"); metadata != nil && mappingValue(metadata, "mac") != nil {
			return true
		}
	}
	return false
}

// mappingValue is the value of key in the mapping node m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func jsonHasMetadata(data []byte) bool {
	var doc struct {
		Sops map[string]json.RawMessage `json:"sops"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return false
	}
	_, ok := doc.Sops["mac"]
	return ok
}

func dotenvHasMetadata(data []byte) bool {
	found := false
	eachLine(data, func(line string) bool {
		found = strings.HasPrefix(line, "sops_mac=")
		return !found
	})
	return found
}

func iniHasMetadata(data []byte) bool {
	inSops, found := false, false
	eachLine(data, func(line string) bool {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			inSops = line == "[sops]"
			return true
		}
		if key, _, ok := strings.Cut(line, "="); ok && inSops && strings.TrimSpace(key) == "mac" {
			found = true
		}
		return !found
	})
	return found
}

// eachLine calls f with each line of data until f returns false. Lines
// longer than the scanner's buffer end the scan (such a file is not one
// SOPS wrote).
func eachLine(data []byte, f func(string) bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if !f(sc.Text()) {
			return
		}
	}
}
