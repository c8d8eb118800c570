package audit

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"

	yaml "go.yaml.in/yaml/v3"

	"github.com/keyless-cd/keyless/internal/yamlnode"
)

// plaintextSecretFindings flags a core Secret committed with readable
// values (KL040): not SOPS-encrypted (no sops metadata, no ENC[…] value)
// and not only placeholders (${VAR}, {{ … }}, empty).
func plaintextSecretFindings(name string, m *yaml.Node) []Finding {
	if api := yamlnode.Scalar(m, "apiVersion"); api != "" && api != "v1" {
		return nil
	}
	if sops := yamlnode.Get(m, "sops"); sops != nil && yamlnode.Get(sops, "mac") != nil {
		return nil
	}
	var keys []string
	line := 0
	for _, field := range []string{"data", "stringData"} {
		values := yamlnode.Get(m, field)
		if values == nil || values.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(values.Content); i += 2 {
			k, v := values.Content[i], values.Content[i+1]
			if v.Kind != yaml.ScalarNode || placeholder(v.Value) || encryptedValue(v.Value) {
				continue
			}
			keys = append(keys, k.Value)
			if line == 0 {
				line = k.Line
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	secret := yamlnode.Scalar(yamlnode.Get(m, "metadata"), "name")
	return []Finding{Rules["KL040"].finding(name, line, fmt.Sprintf("Secret %s holds plaintext values (%s)", secret, joinLimited(keys, 5)))}
}

// encryptedValue is a SOPS-encrypted value.
func encryptedValue(v string) bool { return bytes.HasPrefix([]byte(v), []byte("ENC[")) }

func joinLimited(s []string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("%s, … %d more", joinComma(s[:n]), len(s)-n)
	}
	return joinComma(s)
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, v := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v)
	}
	return b.String()
}

// Private keys of the kinds SOPS decrypts with: an age identity (Bech32,
// X25519 or post-quantum) and an armored OpenPGP private key with a body.
var (
	ageSecretKey  = regexp.MustCompile(`AGE-SECRET-KEY-(?:PQ-)?1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58,}`)
	pgpPrivateKey = regexp.MustCompile(`-----BEGIN PGP PRIVATE KEY BLOCK-----\r?\n(?:[A-Za-z-]+: [^\n]*\r?\n)*\r?\n?[A-Za-z0-9+/=]{40,}`)
)

// privateKeyFindings flags age and OpenPGP private keys in any text (KL041).
func privateKeyFindings(name string, data []byte) []Finding {
	var out []Finding
	for _, c := range []struct {
		re   *regexp.Regexp
		what string
	}{
		{ageSecretKey, "an age private key (AGE-SECRET-KEY-1…)"},
		{pgpPrivateKey, "an armored OpenPGP private key"},
	} {
		for _, loc := range c.re.FindAllIndex(data, 5) {
			line := bytes.Count(data[:loc[0]], []byte("\n")) + 1
			out = append(out, Rules["KL041"].finding(name, line, c.what))
		}
	}
	return out
}
