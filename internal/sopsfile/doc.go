// Package sopsfile reads and writes SOPS-encrypted files with the SOPS
// project's own packages (github.com/getsops/sops/v3: the tree, its stores
// and its AES-GCM cipher) and a key service of its own that knows only the
// keys it is given in memory: age identities (filippo.io/age) and OpenPGP
// private keys (ProtonMail/go-crypto). It never reads a key from the
// environment, a file or a cloud KMS, never starts gpg, and never writes.
//
// What is here: detect.go (is a file SOPS-encrypted?), keys.go (parsing the
// identities of a decryption Secret or key file), keyservice.go (the key
// service handed to SOPS), decrypt.go, encrypt.go, and errors.go (typed
// errors that name the file and the recipients, never a value).
package sopsfile
