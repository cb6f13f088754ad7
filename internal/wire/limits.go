package wire

import (
	"fmt"
	"math"
	"time"

	"github.com/cove-sandbox/cove"
)

// The binary units of sizes on the wire.
const (
	kib = 1 << 10
	mib = 1 << 20
)

// Limits are cove.Limits on the wire. Sizes are in MiB (KiB for output),
// and may be fractional; on input each size may instead be given in bytes
// under its _bytes name (the JSON of cove.Limits), but not both ways at
// once.
type Limits struct {
	ResourceLimits
	// Timeout is the wall-clock limit of one execution.
	Timeout Duration `json:"timeout,omitzero"`
}

// ResourceLimits are the fields of Limits but timeout: POST /v1/run takes
// them at its top level, where "timeout" is the code's (CodeRequest).
type ResourceLimits struct {
	// MemoryMB caps the sandbox's memory (RAM, no swap) in MiB.
	MemoryMB    float64 `json:"memory_mb,omitzero"`
	MemoryBytes int64   `json:"memory_bytes,omitzero"`
	// CPUs is CPU bandwidth in cores (0.5 is half a core).
	CPUs float64 `json:"cpus,omitzero"`
	// Pids caps processes and threads.
	Pids int `json:"pids,omitzero"`
	// DiskMB caps the workspace's disk usage in MiB.
	DiskMB    float64 `json:"disk_mb,omitzero"`
	DiskBytes int64   `json:"disk_bytes,omitzero"`
	// TmpMB caps /tmp and /dev/shm (each) in MiB.
	TmpMB    float64 `json:"tmp_mb,omitzero"`
	TmpBytes int64   `json:"tmp_bytes,omitzero"`
	// OutputKB caps each of stdout and stderr of one execution in KiB.
	OutputKB    float64 `json:"output_kb,omitzero"`
	OutputBytes int64   `json:"output_bytes,omitzero"`
	// OpenFiles is the open file limit of user processes.
	OpenFiles int `json:"open_files,omitzero"`
	// FileMB is the largest file a user process may write, in MiB.
	FileMB    float64 `json:"file_mb,omitzero"`
	FileBytes int64   `json:"file_bytes,omitzero"`
	// Network lists the hosts the sandbox may reach through cove's HTTP
	// proxy, separated by commas ("pypi.org,*.pythonhosted.org",
	// "example.com:8080"), or "none".
	Network string `json:"network,omitzero"`
}

// LimitsFrom returns l on the wire, with sizes in their unit names; a
// negative size, which the server refuses, goes in bytes, so that the
// refusal names what the caller gave (memory_bytes -1, not memory_mb
// -9.5367431640625e-07).
func LimitsFrom(l cove.Limits) Limits {
	w := Limits{
		ResourceLimits: ResourceLimits{
			CPUs:      l.CPUs,
			Pids:      l.Pids,
			OpenFiles: l.OpenFiles,
			Network:   l.Network,
		},
		Timeout: Duration(l.Timeout),
	}
	r := &w.ResourceLimits
	sizeFrom(l.MemoryBytes, mib, &r.MemoryMB, &r.MemoryBytes)
	sizeFrom(l.DiskBytes, mib, &r.DiskMB, &r.DiskBytes)
	sizeFrom(l.TmpBytes, mib, &r.TmpMB, &r.TmpBytes)
	sizeFrom(l.OutputBytes, kib, &r.OutputKB, &r.OutputBytes)
	sizeFrom(l.FileBytes, mib, &r.FileMB, &r.FileBytes)
	return w
}

// sizeFrom sets a size of b bytes on the wire: in unit, or in bytes when
// it is negative.
func sizeFrom(b, unit int64, inUnit *float64, inBytes *int64) {
	if b < 0 {
		*inBytes = b
		return
	}
	*inUnit = float64(b) / float64(unit)
}

// Cove converts l to cove.Limits. Errors: invalid (a size given both ways,
// or out of range). Limits are checked further by the service.
func (l Limits) Cove() (cove.Limits, error) {
	var errs errList
	out := cove.Limits{
		MemoryBytes: errs.size("memory", l.MemoryMB, mib, l.MemoryBytes),
		CPUs:        l.CPUs,
		Pids:        l.Pids,
		DiskBytes:   errs.size("disk", l.DiskMB, mib, l.DiskBytes),
		TmpBytes:    errs.size("tmp", l.TmpMB, mib, l.TmpBytes),
		Timeout:     time.Duration(l.Timeout),
		OutputBytes: errs.size("output", l.OutputKB, kib, l.OutputBytes),
		OpenFiles:   l.OpenFiles,
		FileBytes:   errs.size("file", l.FileMB, mib, l.FileBytes),
		Network:     l.Network,
	}
	return out, errs.err("invalid limits")
}

// Merge returns l with every field that l leaves unset taken from o.
// Errors: invalid, when both set a field to different values.
func (l Limits) Merge(o Limits) (Limits, error) {
	var errs errList
	mergeField(&errs, "memory_mb", &l.MemoryMB, o.MemoryMB)
	mergeField(&errs, "memory_bytes", &l.MemoryBytes, o.MemoryBytes)
	mergeField(&errs, "cpus", &l.CPUs, o.CPUs)
	mergeField(&errs, "pids", &l.Pids, o.Pids)
	mergeField(&errs, "disk_mb", &l.DiskMB, o.DiskMB)
	mergeField(&errs, "disk_bytes", &l.DiskBytes, o.DiskBytes)
	mergeField(&errs, "tmp_mb", &l.TmpMB, o.TmpMB)
	mergeField(&errs, "tmp_bytes", &l.TmpBytes, o.TmpBytes)
	mergeField(&errs, "timeout", &l.Timeout, o.Timeout)
	mergeField(&errs, "output_kb", &l.OutputKB, o.OutputKB)
	mergeField(&errs, "output_bytes", &l.OutputBytes, o.OutputBytes)
	mergeField(&errs, "open_files", &l.OpenFiles, o.OpenFiles)
	mergeField(&errs, "file_mb", &l.FileMB, o.FileMB)
	mergeField(&errs, "file_bytes", &l.FileBytes, o.FileBytes)
	mergeField(&errs, "network", &l.Network, o.Network)
	return l, errs.err("invalid limits")
}

func mergeField[T comparable](errs *errList, name string, dst *T, src T) {
	var zero T
	switch {
	case src == zero:
	case *dst == zero:
		*dst = src
	case *dst != src:
		errs.add(fmt.Sprintf("%s is given twice with different values (at the top level and in limits)", name))
	}
}

// Quota is cove.Quota on the wire, with memory in MiB (or, on input, in
// bytes as max_memory_bytes).
type Quota struct {
	MaxSandboxes       int     `json:"max_sandboxes,omitzero"`
	MaxConcurrentExecs int     `json:"max_concurrent_execs,omitzero"`
	MaxMemoryMB        float64 `json:"max_memory_mb,omitzero"`
	MaxMemoryBytes     int64   `json:"max_memory_bytes,omitzero"`
}

// QuotaFrom returns q on the wire.
func QuotaFrom(q cove.Quota) Quota {
	return Quota{MaxSandboxes: q.MaxSandboxes, MaxConcurrentExecs: q.MaxConcurrentExecs, MaxMemoryMB: float64(q.MaxMemoryBytes) / mib}
}

// Cove converts q to cove.Quota. Errors: invalid.
func (q Quota) Cove() (cove.Quota, error) {
	var errs errList
	out := cove.Quota{
		MaxSandboxes:       q.MaxSandboxes,
		MaxConcurrentExecs: q.MaxConcurrentExecs,
		MaxMemoryBytes:     errs.size("max_memory", q.MaxMemoryMB, mib, q.MaxMemoryBytes),
	}
	return out, errs.err("invalid quota")
}

// errList gathers every problem of a request so that one answer names
// them all.
type errList []string

func (e *errList) add(s string) { *e = append(*e, s) }

// size converts a size given in a unit (v) or in bytes (b) to bytes.
func (e *errList) size(name string, v float64, unit int64, b int64) int64 {
	unitName := map[int64]string{kib: "kb", mib: "mb"}[unit]
	unitSym := map[int64]string{kib: "KiB", mib: "MiB"}[unit]
	if v < 0 || b < 0 {
		field, given := name+"_"+unitName, fmt.Sprintf("%g", v)
		if v >= 0 {
			field, given = name+"_bytes", fmt.Sprint(b)
		}
		e.add(fmt.Sprintf("%s %s must not be negative: give a size in %s (or %s_bytes in bytes), or leave it out for the default", field, given, unitSym, name))
		return 0
	}
	if v == 0 {
		return b
	}
	if b != 0 {
		if bytesOf(v, unit) == b {
			return b
		}
		e.add(fmt.Sprintf("%s is given both as %s_%s and %s_bytes: give one", name, name, unitName, name))
		return 0
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > float64(math.MaxInt64/4)/float64(unit) {
		e.add(fmt.Sprintf("%s_%s %g is out of range", name, unitName, v))
		return 0
	}
	return bytesOf(v, unit)
}

func bytesOf(v float64, unit int64) int64 { return int64(math.Round(v * float64(unit))) }

func (e errList) err(prefix string) error {
	if len(e) == 0 {
		return nil
	}
	msg := prefix + ": " + e[0]
	for _, s := range e[1:] {
		msg += "; " + s
	}
	return cove.Errorf(cove.CodeInvalid, "%s", msg)
}
