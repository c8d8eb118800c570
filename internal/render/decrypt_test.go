package render

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyless-cd/keyless/internal/sopsfile"
	"github.com/keyless-cd/keyless/internal/sopsfile/sopstest"
)

const plainSecret = `apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: s3cret-plaintext
`

// writeFiles writes files (path → content) under a new root.
func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// assertNoPlaintextOnDisk fails when any file under root holds needle.
func assertNoPlaintextOnDisk(t *testing.T, root, needle string) {
	t.Helper()
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if data, _ := os.ReadFile(p); bytes.Contains(data, []byte(needle)) {
				t.Errorf("%s holds the plaintext", p)
			}
		}
		return nil
	})
}

func decryptionOf(k sopstest.Key) *Decryption {
	return &Decryption{Keys: map[string][]byte{"team.agekey": k.File}}
}

func TestRenderDecryptsPlainKustomizeAndHelmValues(t *testing.T) {
	k := sopstest.NewKey(t)
	root := writeFiles(t, map[string][]byte{
		"plain/secret.yaml": sopstest.Encrypt(t, k, "secret.yaml", plainSecret),
		"plain/cm.yaml":     []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n"),
		"kust/kustomization.yaml": []byte(`resources: [secret.yaml]
namePrefix: team-
secretGenerator:
- name: gen
  files: [token.txt]
  envs: [app.env]
`),
		"kust/secret.yaml": sopstest.Encrypt(t, k, "secret.yaml", plainSecret),
		"kust/token.txt":   sopstest.Encrypt(t, k, "token.txt", "tok-plaintext"),
		"kust/app.env":     sopstest.Encrypt(t, k, "app.env", "API_KEY=env-plaintext\n"),
		"chart/Chart.yaml": []byte("apiVersion: v2\nname: app\nversion: 0.1.0\n"),
		"chart/templates/secret.yaml": []byte(`apiVersion: v1
kind: Secret
metadata:
  name: from-values
stringData:
  password: {{ .Values.db.password | quote }}
`),
		"chart/secrets.yaml": sopstest.EncryptAll(t, k, "secrets.yaml", "db:\n  password: helm-plaintext\n"),
	})

	res, err := Render(t.Context(), Options{Root: root, Path: "plain", Namespace: "team-a", Decryption: decryptionOf(k)})
	if err != nil {
		t.Fatal(err)
	}
	s := find(t, res.Objects, "Secret", "db")
	if v, _, _ := unstructured.NestedString(s.Object, "stringData", "password"); v != "s3cret-plaintext" {
		t.Errorf("plain: password = %q", v)
	}
	if _, ok := s.Object["sops"]; ok {
		t.Error("plain: the SOPS metadata was applied with the Secret")
	}
	if strings.Join(res.Decrypted, ",") != "plain/secret.yaml" {
		t.Errorf("Decrypted = %v", res.Decrypted)
	}

	res, err = Render(t.Context(), Options{Root: root, Path: "kust", Namespace: "team-a", Decryption: decryptionOf(k)})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedString(find(t, res.Objects, "Secret", "team-db").Object, "stringData", "password"); v != "s3cret-plaintext" {
		t.Errorf("kustomize resource (with namePrefix): password = %q", v)
	}
	var gen *unstructured.Unstructured
	for _, o := range res.Objects {
		if strings.HasPrefix(o.GetName(), "team-gen-") {
			gen = o
		}
	}
	if gen == nil {
		t.Fatalf("no generated Secret in %v", ids(res.Objects))
	}
	data, _, _ := unstructured.NestedStringMap(gen.Object, "data")
	if data["token.txt"] != "dG9rLXBsYWludGV4dA==" || data["API_KEY"] != "ZW52LXBsYWludGV4dA==" {
		t.Errorf("secretGenerator data = %v, want the decrypted file and env values", data)
	}

	res, err = Render(t.Context(), Options{Root: root, Path: "chart", Namespace: "team-a", Decryption: decryptionOf(k),
		Helm: HelmOptions{ValueFiles: []string{"secrets.yaml"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedString(find(t, res.Objects, "Secret", "from-values").Object, "stringData", "password"); v != "helm-plaintext" {
		t.Errorf("helm valueFiles: password = %q", v)
	}
	for _, needle := range []string{"s3cret-plaintext", "tok-plaintext", "env-plaintext", "helm-plaintext"} {
		assertNoPlaintextOnDisk(t, root, needle)
	}
}

func TestRenderRefusesEncryptedFilesWithoutDecryption(t *testing.T) {
	k := sopstest.NewKey(t)
	root := writeFiles(t, map[string][]byte{
		"plain/secret.yaml":       sopstest.Encrypt(t, k, "secret.yaml", plainSecret),
		"kust/kustomization.yaml": []byte("secretGenerator:\n- name: gen\n  envs: [app.env]\n"),
		"kust/app.env":            sopstest.Encrypt(t, k, "app.env", "API_KEY=env-plaintext\n"),
		"chart/Chart.yaml":        []byte("apiVersion: v2\nname: app\nversion: 0.1.0\n"),
		"chart/values.yaml":       sopstest.EncryptAll(t, k, "values.yaml", "password: helm-plaintext\n"),
		"chart/templates/cm.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  p: {{ .Values.password | quote }}\n"),
	})
	for path, file := range map[string]string{"plain": "plain/secret.yaml", "kust": "kust/app.env", "chart": "chart/values.yaml"} {
		_, err := Render(t.Context(), Options{Root: root, Path: path, Namespace: "team-a"})
		if !errors.Is(err, ErrDecryption) || !errors.Is(err, sopsfile.ErrEncrypted) {
			t.Errorf("%s: err = %v, want ErrDecryption and sopsfile.ErrEncrypted", path, err)
			continue
		}
		if !strings.Contains(err.Error(), file) {
			t.Errorf("%s: error %q does not name %s", path, err, file)
		}
	}
	// Even with keys, a chart's own encrypted values.yaml is refused.
	if _, err := Render(t.Context(), Options{Root: root, Path: "chart", Namespace: "team-a", Decryption: decryptionOf(k)}); !errors.Is(err, sopsfile.ErrEncrypted) {
		t.Errorf("chart values.yaml with keys: err = %v", err)
	}
}

func TestRenderWithTheWrongKeyNamesFileAndRecipient(t *testing.T) {
	owner, other := sopstest.NewKey(t), sopstest.NewKey(t)
	root := writeFiles(t, map[string][]byte{"plain/secret.yaml": sopstest.Encrypt(t, owner, "secret.yaml", plainSecret)})
	_, err := Render(t.Context(), Options{Root: root, Path: "plain", Namespace: "team-a", Decryption: decryptionOf(other)})
	if !errors.Is(err, sopsfile.ErrNoMatchingKey) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"plain/secret.yaml", owner.Recipient, other.Recipient} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if (&Decryption{Keys: map[string][]byte{"k.agekey": other.File}}).String() == "" || strings.Contains((&Decryption{Keys: map[string][]byte{"k.agekey": other.File}}).String(), "AGE-SECRET") {
		t.Error("Decryption.String shows a key")
	}
}

// TestRenderReadEncryptedKeepsCiphertext: a preview or a Role derivation
// reads a SOPS file without its key: kinds and names, no value, no metadata.
func TestRenderReadEncryptedKeepsCiphertext(t *testing.T) {
	k := sopstest.NewKey(t)
	root := writeFiles(t, map[string][]byte{"plain/secret.yaml": sopstest.Encrypt(t, k, "secret.yaml", plainSecret)})
	res, err := Render(t.Context(), Options{Root: root, Path: "plain", Namespace: "team-a", ReadEncrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	s := find(t, res.Objects, "Secret", "db")
	v, _, _ := unstructured.NestedString(s.Object, "stringData", "password")
	if !strings.HasPrefix(v, "ENC[") || s.Object["sops"] != nil || len(res.Decrypted) != 0 {
		t.Errorf("password = %q, sops = %v, decrypted %v: want the ciphertext without metadata", v, s.Object["sops"], res.Decrypted)
	}
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "plain/secret.yaml") {
		t.Errorf("warnings = %v, want the file read encrypted named", res.Warnings)
	}
}
