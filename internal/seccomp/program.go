package seccomp

import (
	"fmt"
	"slices"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
)

// action is a seccomp filter's verdict: a SECCOMP_RET_* value, carrying an
// errno in its low 16 bits for actErrno.
type action uint32

const (
	actAllow       action = 0x7fff0000 // SECCOMP_RET_ALLOW
	actKillProcess action = 0x80000000 // SECCOMP_RET_KILL_PROCESS
	actErrno       action = 0x00050000 // SECCOMP_RET_ERRNO
)

// fail returns the action that fails a syscall with errno.
func fail(errno uint16) action { return actErrno | action(errno) }

// op is a test on one syscall argument.
type op int

const (
	// opEqual64: the whole 64-bit argument equals the value. For an int
	// argument the kernel ignores the high half, so use this only to allow:
	// setting high bits then just fails to match.
	opEqual64 op = iota
	// opEqual32: the low 32 bits equal the value, whatever the high half
	// holds. Refusals of int arguments use this, or setting high bits would
	// slip past them (Flatpak's CVE-2019-10063).
	opEqual32
	// opNoneOf32: none of the value's bits is set in the low 32 bits.
	opNoneOf32
)

// cond is a test on argument arg (0 to 5).
type cond struct {
	arg   uint32
	op    op
	value uint64
}

// rule gives a syscall's verdict when all its conditions hold (always, if
// it has none). The first rule that matches decides.
type rule struct {
	name   string
	action action
	when   []cond
}

// Offsets in struct seccomp_data. Arguments are 64-bit, and both supported
// architectures are little-endian, so an argument's low half comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// x32Bit marks x32 syscalls, which share AUDIT_ARCH_X86_64 with native ones.
const x32Bit = 0x40000000

// maxInstructions is the kernel's BPF_MAXINSNS.
const maxInstructions = 4096

// compile turns rules into a classic BPF seccomp program for one
// architecture. The program kills the process on a syscall of another
// architecture (i386 on x86_64, arm32 on arm64) or of the x32 ABI, then tries
// the rules in order, and otherwise returns defaultAction.
//
// Each rule is a self-contained block that leaves the syscall number in the
// accumulator when it does not match, so no argument a rule loaded can be
// mistaken for a syscall number by the rules after it. (That is why the
// program is not built with github.com/elastic/go-seccomp-bpf's assembler,
// whose syscall tables it does use: v1.6.0 compares later syscall numbers
// against whatever argument a failed check loaded, which let
// socket(AF_VSOCK) through as if it were sendfile.) Jumps stay inside a
// block, within classic BPF's 255-instruction reach.
func compile(info *arch.Info, rules []rule, defaultAction action) ([]bpf.Instruction, error) {
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: uint32(actKillProcess)},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	}
	if info.ID == arch.X86_64.ID {
		// -1 is no x32 call but the "no syscall" number; like libseccomp,
		// leave it to the rules (which refuse it).
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpBitsNotSet, Val: x32Bit, SkipTrue: 2},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0xffffffff, SkipTrue: 1},
			bpf.RetConstant{Val: uint32(actKillProcess)},
		)
	}

	for i := 0; i < len(rules); {
		if len(rules[i].when) > 0 {
			block, err := compileRule(info, rules[i])
			if err != nil {
				return nil, err
			}
			prog = append(prog, block...)
			i++
			continue
		}
		// Consecutive unconditional rules with one verdict share a block.
		j := i
		var nrs []uint32
		for ; j < len(rules) && len(rules[j].when) == 0 && rules[j].action == rules[i].action; j++ {
			nr, err := syscallNumber(info, rules[j].name)
			if err != nil {
				return nil, err
			}
			nrs = append(nrs, nr)
		}
		prog = append(prog, compileSet(nrs, rules[i].action)...)
		i = j
	}

	prog = append(prog, bpf.RetConstant{Val: uint32(defaultAction)})
	if len(prog) > maxInstructions {
		return nil, fmt.Errorf("program has %d instructions, more than the kernel's %d", len(prog), maxInstructions)
	}
	return prog, nil
}

// compileSet returns act for any of the syscall numbers nrs and falls
// through past its last instruction for any other. The numbers are searched
// as a binary tree (jge) down to small leaves of jeq tests, so a syscall
// costs a dozen instructions rather than one per number in the set: the
// kernel runs the filter for every syscall number when it installs it (to
// cache the verdicts that do not depend on arguments), and on every
// syscall whose verdict it could not cache.
func compileSet(nrs []uint32, act action) []bpf.Instruction {
	nrs = slices.Clone(nrs)
	slices.Sort(nrs)
	nrs = slices.Compact(nrs)
	var out []bpf.Instruction
	// exits are the jumps (ja) to the end of the set, patched at the end.
	var exits []int
	var tree func(nrs []uint32)
	tree = func(nrs []uint32) {
		if len(nrs) <= setLeaf {
			// jeq n1 → ret; ...; jeq nk → ret; ja end; ret act
			for i, nr := range nrs {
				out = append(out, bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipTrue: uint8(len(nrs) - i)})
			}
			exits = append(exits, len(out))
			out = append(out, bpf.Jump{}, bpf.RetConstant{Val: uint32(act)})
			return
		}
		mid := len(nrs) / 2
		// jge nrs[mid] → right; else the left half follows. The right half
		// may lie beyond a conditional jump's 255 instructions: jump there
		// through a ja, whose reach is 32 bits.
		node := len(out)
		out = append(out, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: nrs[mid], SkipFalse: 1}, bpf.Jump{})
		tree(nrs[:mid])
		out[node+1] = bpf.Jump{Skip: uint32(len(out) - node - 2)}
		tree(nrs[mid:])
	}
	tree(nrs)
	for _, at := range exits {
		out[at] = bpf.Jump{Skip: uint32(len(out) - at - 1)}
	}
	return out
}

// setLeaf is the most numbers compileSet tests one by one.
const setLeaf = 6

// compileRule compiles one rule with conditions. Every failed test jumps to
// the block's last instruction, which reloads the syscall number.
func compileRule(info *arch.Info, r rule) ([]bpf.Instruction, error) {
	nr, err := syscallNumber(info, r.name)
	if err != nil {
		return nil, err
	}
	type exit struct {
		at     int
		onTrue bool // the jump's true branch fails the rule, not its false one
	}
	var block []bpf.Instruction
	var exits []exit
	jumpOut := func(cond bpf.JumpTest, val uint32, onTrue bool) {
		exits = append(exits, exit{at: len(block), onTrue: onTrue})
		block = append(block, bpf.JumpIf{Cond: cond, Val: val})
	}
	loadArg := func(arg uint32, high bool) {
		off := offArgs + 8*arg
		if high {
			off += 4
		}
		block = append(block, bpf.LoadAbsolute{Off: off, Size: 4})
	}

	jumpOut(bpf.JumpEqual, nr, false)
	for _, c := range r.when {
		if c.arg > 5 {
			return nil, fmt.Errorf("rule for %s tests argument %d; syscalls have 6", r.name, c.arg)
		}
		switch c.op {
		case opEqual64:
			loadArg(c.arg, true)
			jumpOut(bpf.JumpEqual, uint32(c.value>>32), false)
			loadArg(c.arg, false)
			jumpOut(bpf.JumpEqual, uint32(c.value), false)
		case opEqual32:
			loadArg(c.arg, false)
			jumpOut(bpf.JumpEqual, uint32(c.value), false)
		case opNoneOf32:
			loadArg(c.arg, false)
			jumpOut(bpf.JumpBitsSet, uint32(c.value), true)
		default:
			return nil, fmt.Errorf("rule for %s has unknown operation %d", r.name, c.op)
		}
	}
	block = append(block,
		bpf.RetConstant{Val: uint32(r.action)},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	)

	reload := len(block) - 1
	for _, e := range exits {
		skip := reload - e.at - 1
		if skip > 255 {
			return nil, fmt.Errorf("rule for %s is too long to compile", r.name)
		}
		j := block[e.at].(bpf.JumpIf)
		if e.onTrue {
			j.SkipTrue = uint8(skip)
		} else {
			j.SkipFalse = uint8(skip)
		}
		block[e.at] = j
	}
	return block, nil
}

// syscallNumber returns name's number on the architecture.
func syscallNumber(info *arch.Info, name string) (uint32, error) {
	nr, ok := info.SyscallNames[name]
	if !ok {
		return 0, fmt.Errorf("no syscall %s on %s", name, info.Name)
	}
	return uint32(nr), nil
}
