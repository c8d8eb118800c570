package render

import "github.com/keyless-cd/keyless/internal/confine"

// ErrOutsideRoot is returned (wrapped) when a path, or the symlink it is,
// leads outside the checkout root. It is confine.ErrOutsideRoot, named here
// for callers of the renderer.
var ErrOutsideRoot = confine.ErrOutsideRoot
