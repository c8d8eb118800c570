package controller

import (
	"github.com/keyless-cd/keyless/internal/credential"
)

// ErrCredentialRefused is returned (wrapped) when an Application's Secret
// may not be used for what it is named for (Git, forge, notification) or
// sent where it would go. It is credential.ErrRefused: the controller and
// the CLI apply the same rule.
var ErrCredentialRefused = credential.ErrRefused
