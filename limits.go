package cove

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limits bound what one sandbox may use. The zero value of a field means
// "use the configured default"; see DefaultLimits.
type Limits struct {
	// MemoryBytes caps the sandbox's user processes (RAM, no swap).
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// CPUs is the CPU bandwidth in cores (0.5 is half a core).
	CPUs float64 `json:"cpus,omitempty"`
	// Pids caps the number of processes and threads.
	Pids int `json:"pids,omitempty"`
	// DiskBytes caps the workspace's disk usage.
	DiskBytes int64 `json:"disk_bytes,omitempty"`
	// TmpBytes caps /tmp and /dev/shm (each; memory backed, counted as memory).
	TmpBytes int64 `json:"tmp_bytes,omitempty"`
	// Timeout is the wall-clock limit of one execution.
	Timeout time.Duration `json:"timeout,omitempty"`
	// OutputBytes caps each of stdout and stderr of one execution.
	OutputBytes int64 `json:"output_bytes,omitempty"`
	// OpenFiles is RLIMIT_NOFILE for user processes.
	OpenFiles int `json:"open_files,omitempty"`
	// FileBytes is RLIMIT_FSIZE for user processes (0: the disk limit);
	// it may not be larger than the disk limit.
	FileBytes int64 `json:"file_bytes,omitempty"`
	// Network lists the hosts the sandbox may reach, through cove's HTTP
	// proxy, as ParseNetwork accepts them ("pypi.org,*.pythonhosted.org");
	// "none" (or empty, unless the configured default allows more) leaves
	// the sandbox with its loopback only.
	Network string `json:"network,omitempty"`
}

// DefaultLimits are cove's embedded defaults.
func DefaultLimits() Limits {
	return Limits{
		MemoryBytes: 512 << 20,
		CPUs:        1,
		Pids:        256,
		DiskBytes:   1 << 30,
		TmpBytes:    64 << 20,
		Timeout:     30 * time.Second,
		OutputBytes: 1 << 20,
		OpenFiles:   1024,
	}
}

// WithDefaults returns l with every zero field taken from d.
func (l Limits) WithDefaults(d Limits) Limits {
	if l.MemoryBytes == 0 {
		l.MemoryBytes = d.MemoryBytes
	}
	if l.CPUs == 0 {
		l.CPUs = d.CPUs
	}
	if l.Pids == 0 {
		l.Pids = d.Pids
	}
	if l.DiskBytes == 0 {
		l.DiskBytes = d.DiskBytes
	}
	if l.TmpBytes == 0 {
		// /tmp is memory: a default larger than a small memory limit
		// would only promise what the sandbox cannot hold.
		l.TmpBytes = d.TmpBytes
		if l.MemoryBytes > 0 && l.TmpBytes > l.MemoryBytes {
			l.TmpBytes = l.MemoryBytes
		}
	}
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.OutputBytes == 0 {
		l.OutputBytes = d.OutputBytes
	}
	if l.OpenFiles == 0 {
		l.OpenFiles = d.OpenFiles
	}
	if l.FileBytes == 0 {
		l.FileBytes = d.FileBytes
	}
	if l.Network == "" {
		l.Network = d.Network
	}
	return l
}

// Bounds on limits: below the minimum nothing useful runs, above the maximum
// a request is a mistake.
const (
	MinMemoryBytes = 8 << 20
	MinPids        = 8
	MinDiskBytes   = 1 << 20
	MinTmpBytes    = 1 << 20
	// MinOpenFiles is the smallest open-files limit: the sandbox's agent,
	// which starts the user's processes, lives under the same limit and
	// needs descriptors of its own for each execution's pipes.
	MinOpenFiles = 64
	// MaxOpenFiles is the kernel's default ceiling (fs.nr_open).
	MaxOpenFiles = 1 << 20
	MaxCPUs      = 256
	// MaxPids is the kernel's own ceiling (PID_MAX_LIMIT on 64-bit).
	MaxPids = 1 << 22
	// Timeouts are kept in milliseconds: a shorter one would be none.
	MinTimeout = time.Millisecond
	MaxTimeout = 24 * time.Hour
	// MaxOutputBytes bounds each output stream: an answer that is not
	// streamed holds the whole output in cove's memory until it is sent.
	MaxOutputBytes = 16 << 20
)

// CheckTimeout reports a timeout (0: the default) out of range.
func CheckTimeout(d time.Duration) error {
	if d < 0 || d > MaxTimeout || (d != 0 && d < MinTimeout) {
		return Errorf(CodeInvalid, "timeout %s is out of range (%s to %s)", d, MinTimeout, FormatDuration(MaxTimeout))
	}
	return nil
}

// FormatDuration writes d as Go does, without the zero minutes and
// seconds of a whole number of hours or minutes ("24h", "30m", not
// "24h0m0s"), for messages.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// CheckOutput reports an output limit (0: the default) out of range.
func CheckOutput(n int64) error {
	if n < 0 || n > MaxOutputBytes {
		return Errorf(CodeInvalid, "output limit %s is out of range (up to %s per stream; stream the output to see more of it as it comes)", FormatBytes(n), FormatBytes(MaxOutputBytes))
	}
	return nil
}

// Validate reports every out-of-range field at once.
func (l Limits) Validate() error {
	var probs []string
	if l.MemoryBytes != 0 && l.MemoryBytes < MinMemoryBytes {
		probs = append(probs, fmt.Sprintf("memory %s is below the minimum of %s", FormatBytes(l.MemoryBytes), FormatBytes(MinMemoryBytes)))
	}
	if math.IsNaN(l.CPUs) || l.CPUs < 0 || l.CPUs > MaxCPUs || (l.CPUs != 0 && l.CPUs < 0.01) {
		probs = append(probs, fmt.Sprintf("cpus %g is out of range (0.01 to %d)", l.CPUs, MaxCPUs))
	}
	if l.Pids != 0 && (l.Pids < MinPids || l.Pids > MaxPids) {
		probs = append(probs, fmt.Sprintf("pids %d is out of range (%d to %d)", l.Pids, MinPids, MaxPids))
	}
	if l.DiskBytes != 0 && l.DiskBytes < MinDiskBytes {
		probs = append(probs, fmt.Sprintf("disk %s is below the minimum of %s", FormatBytes(l.DiskBytes), FormatBytes(MinDiskBytes)))
	}
	if l.TmpBytes != 0 && l.TmpBytes < MinTmpBytes {
		probs = append(probs, fmt.Sprintf("tmp size %s is below the minimum of %s", FormatBytes(l.TmpBytes), FormatBytes(MinTmpBytes)))
	}
	if l.TmpBytes > 0 && l.MemoryBytes > 0 && l.TmpBytes > l.MemoryBytes {
		probs = append(probs, fmt.Sprintf("tmp size %s is larger than the memory limit of %s: /tmp and /dev/shm are memory, counted in the sandbox's memory limit, so give at most the memory limit (or raise it)", FormatBytes(l.TmpBytes), FormatBytes(l.MemoryBytes)))
	}
	if err := CheckTimeout(l.Timeout); err != nil {
		probs = append(probs, ErrorMessage(err))
	}
	if err := CheckOutput(l.OutputBytes); err != nil {
		probs = append(probs, ErrorMessage(err))
	}
	if l.OpenFiles != 0 && (l.OpenFiles < MinOpenFiles || l.OpenFiles > MaxOpenFiles) {
		probs = append(probs, fmt.Sprintf("open files %d is out of range (%d to %d)", l.OpenFiles, MinOpenFiles, MaxOpenFiles))
	}
	if l.FileBytes < 0 {
		probs = append(probs, "file size limit must not be negative")
	}
	if l.FileBytes > 0 && l.DiskBytes > 0 && l.FileBytes > l.DiskBytes {
		probs = append(probs, fmt.Sprintf("file size limit %s is larger than the disk limit of %s: give at most the disk limit, or leave it out to use the disk limit", FormatBytes(l.FileBytes), FormatBytes(l.DiskBytes)))
	}
	if _, err := ParseNetwork(l.Network); err != nil {
		probs = append(probs, ErrorMessage(err))
	}
	if len(probs) > 0 {
		return Errorf(CodeInvalid, "invalid limits: %s", strings.Join(probs, "; "))
	}
	return nil
}

// ParseBytes parses a size such as "512M", "1.5GiB", "64mb" or "1048576".
// Units are binary (K = 1024).
func ParseBytes(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(strings.ToUpper(s))
	if s == "" {
		return 0, Errorf(CodeInvalid, "empty size: use a number with an optional unit, such as 512M or 1G")
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
		{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10},
		{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
	} {
		if strings.HasSuffix(s, u.suffix) {
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			mult = u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, Errorf(CodeInvalid, "invalid size %q: use a number with an optional unit (K, M, G, T), such as 512M or 1G", orig)
	}
	return int64(f * float64(mult)), nil
}

// FormatBytes renders n in the largest binary unit that keeps it readable.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n == 1:
		return "1 byte"
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// limitsJSON is Limits on the wire: the timeout as a duration string
// ("30s") rather than nanoseconds.
type limitsJSON struct {
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	CPUs        float64 `json:"cpus,omitempty"`
	Pids        int     `json:"pids,omitempty"`
	DiskBytes   int64   `json:"disk_bytes,omitempty"`
	TmpBytes    int64   `json:"tmp_bytes,omitempty"`
	Timeout     string  `json:"timeout,omitempty"`
	OutputBytes int64   `json:"output_bytes,omitempty"`
	OpenFiles   int     `json:"open_files,omitempty"`
	FileBytes   int64   `json:"file_bytes,omitempty"`
	Network     string  `json:"network,omitempty"`
}

// MarshalJSON writes the timeout as a duration string.
func (l Limits) MarshalJSON() ([]byte, error) {
	j := limitsJSON{l.MemoryBytes, l.CPUs, l.Pids, l.DiskBytes, l.TmpBytes, "", l.OutputBytes, l.OpenFiles, l.FileBytes, l.Network}
	if l.Timeout != 0 {
		j.Timeout = l.Timeout.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the timeout as a duration string ("30s", "1m").
func (l *Limits) UnmarshalJSON(b []byte) error {
	var j limitsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var d time.Duration
	if j.Timeout != "" {
		var err error
		if d, err = time.ParseDuration(j.Timeout); err != nil {
			return Errorf(CodeInvalid, "invalid timeout %q: use a duration such as 30s or 2m", j.Timeout)
		}
	}
	*l = Limits{j.MemoryBytes, j.CPUs, j.Pids, j.DiskBytes, j.TmpBytes, d, j.OutputBytes, j.OpenFiles, j.FileBytes, j.Network}
	return nil
}
