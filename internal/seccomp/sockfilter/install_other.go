//go:build !linux

package sockfilter

import (
	"errors"
	"fmt"
)

// Install fails: seccomp exists only on Linux, and cove runs no sandbox
// without it.
func Install(prog []Instruction) error {
	return fmt.Errorf("installing seccomp filter: %w", errors.ErrUnsupported)
}
