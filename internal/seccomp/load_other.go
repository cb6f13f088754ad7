//go:build !linux

package seccomp

import (
	"errors"
	"fmt"
)

// Load fails: seccomp exists only on Linux, and cove runs no sandbox
// without it.
func Load(opts Options) error {
	return fmt.Errorf("loading seccomp filter: %w", errors.ErrUnsupported)
}
