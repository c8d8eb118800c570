package sopsfile

import (
	"testing"
)

// FuzzIsEncrypted feeds crafted files to the SOPS detection and, for those
// it calls encrypted, to the decryption: neither may panic or hang, and a
// crafted file never decrypts with a key it was not made for.
func FuzzIsEncrypted(f *testing.F) {
	id, keyFile := newIdentity(&testing.T{})
	keys, err := ParseKeys(map[string][]byte{"k.agekey": keyFile})
	if err != nil {
		f.Fatal(err)
	}
	enc, err := Encrypt("s.yaml", []byte(secretYAML), EncryptOptions{AgeRecipients: []string{id.Recipient().String()}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("s.yaml", enc)
	f.Add("a.yaml", []byte("kind: Secret\nsops:\n  mac: x\n  age:\n  - recipient: age1x\n    enc: x\n"))
	f.Add("a.json", []byte(`{"data":"ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]","sops":{"mac":"x","version":"3.9"}}`))
	f.Add("a.env", []byte("A=ENC[x]\nsops_mac=x\nsops_version=3.9\n"))
	f.Add("a.ini", []byte("[sops]\nmac = x\nversion = 3.9\n"))
	f.Add("a.yaml", []byte("sops: &a [*a, *a]\nmac: x\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		if !IsEncrypted(name, data) {
			return
		}
		out, err := Decrypt(name, data, keys)
		if err == nil && len(out) == 0 && len(data) > 0 {
			t.Fatalf("decrypted %q to nothing without an error", name)
		}
	})
}
