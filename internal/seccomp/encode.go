package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/cove-sandbox/cove/internal/seccomp/sockfilter"
)

// Encoded builds the filter for a Go architecture name (amd64 or arm64) and
// assembles it as sockfilter.Decode reads it. Package compiled embeds its
// results, so that cove itself never builds the filter.
func Encoded(goarch string, opts Options) ([]byte, error) {
	insts, err := filterFor(goarch, opts)
	if err != nil {
		return nil, fmt.Errorf("building seccomp filter: %w", err)
	}
	prog, err := assemble(insts)
	if err != nil {
		return nil, err
	}
	return sockfilter.Encode(prog), nil
}

// assemble turns a program into the kernel's instruction layout.
func assemble(insts []bpf.Instruction) ([]sockfilter.Instruction, error) {
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("assembling BPF: %w", err)
	}
	prog := make([]sockfilter.Instruction, len(raw))
	for i, ins := range raw {
		prog[i] = sockfilter.Instruction{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return prog, nil
}
