package seccomp

import (
	"fmt"

	"github.com/cove-sandbox/cove/internal/seccomp/sockfilter"
)

// Program is a compiled filter, ready to install in this process. The
// agents get theirs assembled ahead of time (package compiled).
type Program struct {
	insts []sockfilter.Instruction
}

// Compile builds and assembles Filter(opts).
func Compile(opts Options) (*Program, error) {
	insts, err := Filter(opts)
	if err != nil {
		return nil, err
	}
	prog, err := assemble(insts)
	if err != nil {
		return nil, err
	}
	return &Program{insts: prog}, nil
}

// Load sets no_new_privs and installs Filter(opts) on every thread of the
// process (SECCOMP_FILTER_FLAG_TSYNC); processes started afterwards inherit
// both. Call it once, after the last mount and before running user code: it
// cannot be undone, and the filter refuses mount, unshare and the like from
// then on.
func Load(opts Options) error {
	p, err := Compile(opts)
	if err != nil {
		return fmt.Errorf("loading seccomp filter: %w", err)
	}
	return p.Load()
}

// Load installs the program as Load(opts) does.
func (p *Program) Load() error {
	if err := sockfilter.Install(p.insts); err != nil {
		return fmt.Errorf("loading seccomp filter: %w", err)
	}
	return nil
}
