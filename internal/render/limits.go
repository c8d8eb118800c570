package render

import (
	"errors"
	"fmt"
)

// ErrLimit is returned (wrapped, as a *LimitError) when a render exceeds one
// of its limits: a file too large, too many objects, too much memory or
// time in the render process. Retrying the same commit cannot succeed.
var ErrLimit = errors.New("render limit exceeded")

// LimitError says which limit a render hit and where.
type LimitError struct {
	// Limit names the limit (a flag, e.g. "--max-objects").
	Limit string `json:"limit"`
	// Where is the file, template or kustomization, when known.
	Where string `json:"where,omitempty"`
	// Detail says what was seen.
	Detail string `json:"detail"`
}

func (e *LimitError) Error() string {
	if e.Where == "" {
		return fmt.Sprintf("%s (limit %s)", e.Detail, e.Limit)
	}
	return fmt.Sprintf("%s: %s (limit %s)", e.Where, e.Detail, e.Limit)
}

// Unwrap makes errors.Is(err, ErrLimit) hold.
func (e *LimitError) Unwrap() error { return ErrLimit }

// tooManyObjects is the error for a render past Limits.MaxObjects.
func tooManyObjects(where string, limit int) error {
	return &LimitError{Limit: "--max-objects", Where: where, Detail: fmt.Sprintf("more than %d objects rendered; raise the limit if this is intended", limit)}
}

// fileTooLarge is the error for a file past Limits.MaxFileBytes.
func fileTooLarge(where string, size, limit int64) error {
	detail := fmt.Sprintf("file is more than the limit of %d bytes", limit)
	if size > 0 {
		detail = fmt.Sprintf("file is %d bytes, more than the limit of %d bytes", size, limit)
	}
	return &LimitError{Limit: "--max-file-size", Where: where, Detail: detail}
}
