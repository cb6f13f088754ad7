// Package sockfilter carries an assembled seccomp program from the host,
// which embeds it assembled ahead of time (package compiled), to the
// sandbox's agent, which installs it. It depends on nothing that compiles
// filters, so neither cove nor the agent builds syscall tables or assembles
// BPF when it starts.
package sockfilter

import (
	"encoding/binary"
	"fmt"
)

// Instruction is one classic BPF instruction, as struct sock_filter.
type Instruction struct {
	Code uint16
	Jt   uint8
	Jf   uint8
	K    uint32
}

// maxInstructions is the kernel's BPF_MAXINSNS.
const maxInstructions = 4096

// Encode packs a program as the kernel lays it out, 8 bytes an
// instruction, little-endian.
func Encode(prog []Instruction) []byte {
	b := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		b = binary.LittleEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	return b
}

// Decode unpacks what Encode packed. An empty, truncated or oversized
// program is an error: a sandbox never starts without its filter.
func Decode(b []byte) ([]Instruction, error) {
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("no seccomp program")
	case len(b)%8 != 0:
		return nil, fmt.Errorf("seccomp program of %d bytes is not whole instructions", len(b))
	case len(b)/8 > maxInstructions:
		return nil, fmt.Errorf("seccomp program of %d instructions is longer than the kernel's %d", len(b)/8, maxInstructions)
	}
	prog := make([]Instruction, len(b)/8)
	for i := range prog {
		r := b[8*i:]
		prog[i] = Instruction{Code: binary.LittleEndian.Uint16(r), Jt: r[2], Jf: r[3], K: binary.LittleEndian.Uint32(r[4:])}
	}
	return prog, nil
}
