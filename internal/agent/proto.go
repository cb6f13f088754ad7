package agent

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"github.com/cove-sandbox/cove"
)

// Frame types. Host to agent: frameRequest (first on a stream), frameStdin,
// frameStdinEOF, frameSignal (a context's cell; an execution's signals go
// on a stream of their own, Request.SignalExec). Agent to host: frameStdout, frameStderr,
// frameResult (last, success) and frameError (last, failure).
const (
	frameRequest  byte = 'R'
	frameStdin    byte = 'I'
	frameStdinEOF byte = 'C'
	frameSignal   byte = 'S'
	frameStdout   byte = 'O'
	frameStderr   byte = 'E'
	frameResult   byte = 'X'
	frameError    byte = 'F'
	// frameExec starts an execution (host to agent, instead of a
	// frameRequest), and frameExecResult ends it (agent to host, instead of
	// a frameResult); both carry binary messages (see codec.go).
	frameExec       byte = 'P'
	frameExecResult byte = 'W'
)

// Frames of log and terminal streams. Agent to host: frameAck (first: the
// request was accepted and the stream follows; on a terminal stream its
// payload is JSON {pid}). Host to agent: frameResize (a terminal's new
// size, JSON {cols, rows}).
const (
	frameAck    byte = 'A'
	frameResize byte = 'Z'
)

// Frames of a context's cell. Agent to host, after the frameAck that
// says the cell started: frameStdout and frameStderr (output), frameDisplay
// and frameValue (a MIME bundle as JSON: something the cell displayed, the
// value of its last expression), frameException (a cove.CellError), and
// last frameResult (a CellResult). Host to agent: frameSignal (any signal:
// interrupt the cell; it is killed if it does not end within a second).
const (
	frameDisplay   byte = 'D'
	frameValue     byte = 'V'
	frameException byte = 'Q'
)

// maxFrame bounds a frame's payload; larger data is split into chunks. It
// also bounds what a misbehaving peer can make the other side allocate.
const maxFrame = 8 << 20

// chunkSize is the largest output chunk the agent sends at once.
const chunkSize = 32 << 10

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d", len(payload), maxFrame)
	}
	buf := make([]byte, 5+len(payload))
	buf[0] = typ
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(payload)))
	copy(buf[5:], payload)
	_, err := w.Write(buf)
	return err
}

func writeJSONFrame(w io.Writer, typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFrame(w, typ, b)
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:5])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0], payload, nil
}

// Request is the first frame of every stream but an execution's (which
// starts with a frameExec). Exactly one of its operation fields is set.
type Request struct {
	WriteFiles []File `json:"write_files,omitempty"`
	ReadFile   string `json:"read_file,omitempty"`
	Ping       bool   `json:"ping,omitempty"`
	Stats      bool   `json:"stats,omitempty"`
	// Reset makes the sandbox as it was when it booted, for another run
	// of the same owner (reset_linux.go).
	Reset bool `json:"reset,omitempty"`

	// Background processes and terminals.
	Spawn         *SpawnSpec  `json:"spawn,omitempty"`
	ListProcesses bool        `json:"list_processes,omitempty"`
	GetProcess    int         `json:"get_process,omitempty"` // a pid
	ProcessLogs   *LogsSpec   `json:"process_logs,omitempty"`
	ProcessStdin  *StdinSpec  `json:"process_stdin,omitempty"`
	SignalProcess *SignalSpec `json:"signal_process,omitempty"`
	// SignalExec signals a running execution by its stream's id, from a
	// stream of its own: the execution's stream carries its standard
	// input, and a program that does not read it holds up what follows.
	SignalExec *SignalExecSpec `json:"signal_exec,omitempty"`
	OpenPTY    *PTYSpec        `json:"open_pty,omitempty"`

	// File operations.
	Stat        *PathSpec            `json:"stat,omitempty"`
	List        *PathSpec            `json:"list,omitempty"`
	Mkdir       *PathSpec            `json:"mkdir,omitempty"`
	Move        *MoveSpec            `json:"move,omitempty"`
	Remove      *PathSpec            `json:"remove,omitempty"`
	Chmod       *ChmodSpec           `json:"chmod,omitempty"`
	Search      *cove.SearchRequest  `json:"search,omitempty"`
	Replace     *cove.ReplaceRequest `json:"replace,omitempty"`
	WriteStream *WriteSpec           `json:"write_stream,omitempty"`
	ReadStream  *ReadSpec            `json:"read_stream,omitempty"`
	ArchiveOut  *ArchiveSpec         `json:"archive_out,omitempty"`
	ArchiveIn   *ArchiveSpec         `json:"archive_in,omitempty"`
	Upload      *UploadSpec          `json:"upload,omitempty"`

	// Stateful code contexts (context_linux.go): each operation but
	// StartContext and RunCell names the context by its id.
	StartContext     *ContextSpec `json:"start_context,omitempty"`
	RunCell          *RunCellSpec `json:"run_cell,omitempty"`
	InterruptContext string       `json:"interrupt_context,omitempty"`
	RestartContext   string       `json:"restart_context,omitempty"`
	StopContext      string       `json:"stop_context,omitempty"`
}

// File is a file to write into the workspace. Path is relative to the
// workspace; parents are created.
type File struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
	Mode uint32 `json:"mode,omitempty"`
}

// ExecSpec is one process to run.
type ExecSpec struct {
	Argv []string `json:"argv"`
	// Env is the complete environment (KEY=value).
	Env []string `json:"env"`
	// Dir is the working directory inside the sandbox.
	Dir string `json:"dir"`
	// Stdin says whether the host will stream standard input; when false
	// the program reads /dev/null.
	Stdin bool `json:"stdin"`
	// TimeoutMS is the wall-clock limit (0: none).
	TimeoutMS int64 `json:"timeout_ms"`
	// OutputLimit caps each of stdout and stderr (0: none).
	OutputLimit int64 `json:"output_limit"`
	// Files are written into the workspace before the program starts, in
	// the same round trip.
	Files []File `json:"files,omitempty"`
}

// ExecResult is what the agent reports when an execution ends.
type ExecResult struct {
	ExitCode      int    `json:"exit_code"`
	Signal        int    `json:"signal,omitempty"`
	TimedOut      bool   `json:"timed_out,omitempty"`
	OutputLimited bool   `json:"output_limited,omitempty"`
	OOMKilled     bool   `json:"oom_killed,omitempty"`
	Canceled      bool   `json:"canceled,omitempty"`
	StartError    string `json:"start_error,omitempty"`
	// StartCode classifies StartError where a client may act on it: the
	// code of the file operation that failed (quota_exceeded when the
	// program's files did not fit in the workspace), else "".
	StartCode       string `json:"start_code,omitempty"`
	StdoutBytes     int64  `json:"stdout_bytes"`
	StderrBytes     int64  `json:"stderr_bytes"`
	StdoutTruncated bool   `json:"stdout_truncated,omitempty"`
	StderrTruncated bool   `json:"stderr_truncated,omitempty"`
	WallNS          int64  `json:"wall_ns"`
	CPUNS           int64  `json:"cpu_ns"`
	PeakMemory      int64  `json:"peak_memory"`
}

// Stats is a snapshot of the sandbox's resource use.
type Stats struct {
	MemoryBytes     int64 `json:"memory_bytes"`
	PeakMemoryBytes int64 `json:"peak_memory_bytes"`
	OOMKills        int64 `json:"oom_kills"`
	CPUNS           int64 `json:"cpu_ns"`
	Processes       int   `json:"processes"`
	Execs           int   `json:"execs"`
	// BackgroundProcesses counts the running background processes.
	BackgroundProcesses int `json:"background_processes"`
	// Contexts counts the live interpreters of stateful code contexts.
	Contexts int `json:"contexts"`
}

// ResetResult is the answer to a reset.
type ResetResult struct {
	// Entries and Bytes count what was removed from the workspace, /tmp
	// and /dev/shm (bytes as allocated on disk).
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// wireError is the payload of a frameError.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
