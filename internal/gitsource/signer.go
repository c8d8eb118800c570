package gitsource

import (
	"io"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// SSHSigner signs commits with an SSH key, as `git commit -S` with
// gpg.format=ssh does (namespace "git", SHA-512).
type SSHSigner struct {
	Signer ssh.Signer
}

// Sign implements go-git's Signer.
func (s SSHSigner) Sign(message io.Reader) ([]byte, error) {
	sig, err := sshsig.Sign(message, s.Signer, sshsig.HashSHA512, "git")
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(sig), nil
}
