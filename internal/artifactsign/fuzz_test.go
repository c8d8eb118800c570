package artifactsign

import (
	"encoding/pem"
	"testing"
)

// FuzzParseGitsign: whatever a commit's signature holds, parsing it returns
// a bundle or an error — never a panic — and a bundle only for a signature
// bound to the payload.
func FuzzParseGitsign(f *testing.F) {
	f.Add([]byte("payload"), pem.EncodeToMemory(&pem.Block{Type: "SIGNED MESSAGE", Bytes: []byte{0x30, 0x03, 0x06, 0x01, 0x00}}))
	f.Add([]byte(""), []byte("-----BEGIN SIGNED MESSAGE-----\nMIIKCwYJKoZIhvcNAQcCoIIJ/DCC\n-----END SIGNED MESSAGE-----\n"))
	f.Add([]byte("x"), []byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, payload, der []byte) {
		armored := pem.EncodeToMemory(&pem.Block{Type: "SIGNED MESSAGE", Bytes: der})
		gb, err := parseGitsign(payload, armored)
		if err == nil && (gb == nil || gb.Cert == nil || len(gb.SignedAttrs) == 0) {
			t.Fatalf("a bundle without a certificate or signed attributes: %+v", gb)
		}
	})
}
