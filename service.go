package cove

import (
	"context"
	"io"
	"time"
)

// SandboxState is where a sandbox is in its life.
type SandboxState string

// The sandbox states.
const (
	// StateRunning: the sandbox's processes can run.
	StateRunning SandboxState = "running"
	// StateStopped: no process runs; the workspace and record are kept and
	// StartSandbox brings it back with its files.
	StateStopped SandboxState = "stopped"
	// StateError: the sandbox died unexpectedly; StartSandbox restarts it.
	StateError SandboxState = "error"
	// StateStarting: the sandbox is being created or started; it is
	// running in a moment.
	StateStarting SandboxState = "starting"
	// StateStopping: the sandbox is being stopped or removed.
	StateStopping SandboxState = "stopping"
)

// SandboxSpec describes a sandbox to create.
type SandboxSpec struct {
	// Language is the default language of RunCode in this sandbox.
	Language string            `json:"language,omitempty"`
	Limits   Limits            `json:"limits,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// IdleTimeout stops the sandbox after this long without activity
	// (requests, or processes running in it). Zero: the server default.
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	// TTL deletes the sandbox this long after its creation. Zero: the
	// server default (which may be never).
	TTL time.Duration `json:"ttl,omitempty"`
}

// Sandbox is a sandbox as clients see it.
type Sandbox struct {
	ID           string            `json:"id"`
	State        SandboxState      `json:"state"`
	Language     string            `json:"language,omitempty"`
	Limits       Limits            `json:"limits"`
	Env          map[string]string `json:"env,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Backend      string            `json:"backend"`
	Owner        string            `json:"owner,omitempty"`
	IdleTimeout  time.Duration     `json:"idle_timeout,omitempty"`
	TTL          time.Duration     `json:"ttl,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	LastActiveAt time.Time         `json:"last_active_at"`
	// ExpiresAt is when the TTL deletes the sandbox (zero: never).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// SandboxUpdate changes a sandbox's mutable fields; nil fields stay.
type SandboxUpdate struct {
	// Labels replaces all labels.
	Labels map[string]string `json:"labels,omitempty"`
	// TTL restarts the time to live from now (0 removes it).
	TTL *time.Duration `json:"ttl,omitempty"`
}

// ListOptions filter and page ListSandboxes.
type ListOptions struct {
	// Labels keeps sandboxes that carry all of these labels.
	Labels map[string]string
	// State keeps sandboxes in this state.
	State SandboxState
	// Owner keeps the sandboxes of the key with this id. An admin key
	// sees every key's; another key only its own, so that another id
	// matches none of its sandboxes.
	Owner string
	// Limit caps the page size (default and maximum 100).
	Limit int
	// PageToken continues a previous listing.
	PageToken string
}

// SandboxList is one page of sandboxes, newest first.
type SandboxList struct {
	Sandboxes     []*Sandbox `json:"sandboxes"`
	NextPageToken string     `json:"next_page_token,omitempty"`
}

// VersionInfo describes the service.
type VersionInfo struct {
	Version string `json:"version"`
	Backend string `json:"backend"`
	// Languages are the canonical language names the service runs.
	Languages []string `json:"languages"`
	// Analysis says whether code analysis (Analyze) is configured: an
	// Anthropic API key is set where the service runs.
	Analysis bool `json:"analysis"`
}

// Service is cove's API. Every front end translates to and from it; the
// in-process implementation is internal/service and package client
// implements it over HTTP. Calls act for the key in ctx (see WithKey): a
// sandbox belongs to the key that created it and is not_found for any
// other non-admin key. Without a key in ctx a call acts as the local
// administrator (the in-process CLI). A call that reaches into a sandbox
// may also fail unavailable when the sandbox's agent goes while it runs,
// or when its workspace's file system has gone read-only on the host.
type Service interface {
	// CreateSandbox creates and starts a sandbox.
	// Errors: invalid, quota_exceeded, unavailable (an isolation layer
	// cannot be set up on this host, and the message names it; cove is
	// shutting down).
	CreateSandbox(ctx context.Context, spec SandboxSpec) (*Sandbox, error)
	// GetSandbox returns one sandbox. Errors: not_found.
	GetSandbox(ctx context.Context, id string) (*Sandbox, error)
	// ListSandboxes returns a page of the caller's sandboxes, newest
	// first. Errors: invalid (a bad page token, limit or state).
	ListSandboxes(ctx context.Context, opts ListOptions) (*SandboxList, error)
	// UpdateSandbox changes labels or TTL. Errors: not_found, invalid.
	UpdateSandbox(ctx context.Context, id string, u SandboxUpdate) (*Sandbox, error)
	// StopSandbox kills every process of a sandbox and keeps its workspace.
	// Stopping a stopped sandbox succeeds. Errors: not_found.
	StopSandbox(ctx context.Context, id string) (*Sandbox, error)
	// StartSandbox starts a stopped sandbox with its workspace as it was.
	// Starting a running sandbox succeeds. It is not admitted against
	// quotas again: a stopped sandbox still counts against them.
	// Errors: not_found, conflict (its workspace is gone from the host:
	// the sandbox is then in error, and can only be deleted), unavailable.
	StartSandbox(ctx context.Context, id string) (*Sandbox, error)
	// DeleteSandbox destroys a sandbox and its workspace.
	// Errors: not_found (also for a second delete), internal.
	DeleteSandbox(ctx context.Context, id string) error

	// Exec runs a command in a sandbox and streams its events.
	// Errors: not_found, invalid, conflict (not running), quota_exceeded,
	// unavailable (cove is shutting down).
	Exec(ctx context.Context, id string, req ExecRequest) (Stream, error)
	// RunCode runs source code as a program in a sandbox. TypeScript
	// that does not compile is a result (exit_nonzero, the compiler's
	// report on stderr), not an error. Errors: as Exec, invalid for an
	// unknown language, and conflict when a file of the workspace has
	// the name the program would be written to.
	RunCode(ctx context.Context, id string, req CodeRequest) (Stream, error)
	// Run creates an ephemeral sandbox, runs the code in it, and destroys
	// it when the stream ends or is closed; a server may instead reset it
	// and keep it for the next Run of the same key with the same limits
	// (run_reuse). Errors: as CreateSandbox and RunCode.
	Run(ctx context.Context, req RunRequest) (Stream, error)
	// StopExecution kills a running execution of Exec, RunCode or Run,
	// named by its id (see ExecutionID). Its stream still ends with its
	// exit event (verdict killed), with the time and memory it used: a
	// client that reads the stream in one place can stop it from another,
	// as a browser does. Errors: not_found (no execution of that id is
	// running, or it is another key's).
	StopExecution(ctx context.Context, execID string) error

	// StartProcess starts a long-running background process (a server, a
	// watcher) and returns at once; its output is kept for ProcessLogs.
	// Errors: not_found, invalid, conflict (not running; the sandbox's
	// process limit).
	StartProcess(ctx context.Context, id string, req ProcessRequest) (*Process, error)
	// ListProcesses lists the background processes of a sandbox, running
	// and exited. Errors: not_found, conflict (not running).
	ListProcesses(ctx context.Context, id string) ([]*Process, error)
	// GetProcess returns one background process. Errors: not_found,
	// conflict (not running).
	GetProcess(ctx context.Context, id string, pid int) (*Process, error)
	// ProcessLogs streams a background process's output from its start
	// (what is kept of it); with follow it goes on until the process
	// exits, and ends with an exit event once it has. Errors: not_found,
	// conflict (not running).
	ProcessLogs(ctx context.Context, id string, pid int, follow bool) (Stream, error)
	// WaitProcess blocks until a background process exits and returns it
	// with its Result, at once for one that has already exited; its
	// output is left for ProcessLogs. A process whose sandbox is stopped
	// or deleted meanwhile is killed, and its result says why.
	// Errors: not_found (unknown sandbox or pid), conflict (sandbox not
	// running), and the context's error when it ends first.
	WaitProcess(ctx context.Context, id string, pid int) (*Process, error)
	// WriteProcessStdin writes to a background process's standard input,
	// and closes it when eof is set. Errors: not_found, conflict (not
	// running; the process has exited or its standard input is closed).
	WriteProcessStdin(ctx context.Context, id string, pid int, data []byte, eof bool) error
	// SignalProcess sends a signal ("SIGTERM", "TERM" or "15") to a
	// background process's process group. A process that has already
	// exited is not signalled (its pid may be another process's by now):
	// that is a conflict whose message says how it ended.
	// Errors: not_found, invalid, conflict (exited; sandbox not running).
	SignalProcess(ctx context.Context, id string, pid int, signal string) error

	// OpenPTY starts an interactive program (a shell by default) on a
	// pseudo-terminal. Errors: not_found, conflict (not running),
	// invalid.
	OpenPTY(ctx context.Context, id string, req PTYRequest) (PTY, error)

	// WriteFile writes r to path (relative to /workspace, or absolute
	// under it), creating parents, with permission bits mode (0: those of
	// the file it replaces, else 0644); quota_exceeded when the content is
	// larger than the sandbox's disk limit or the disk limit is reached.
	// Every file operation is a conflict where the sandbox is not
	// running, or where permission bits forbid it to the sandbox user
	// (ChmodFile changes them); and invalid for a path that is not UTF-8
	// or that a link takes out of the workspace.
	// Errors: not_found, invalid (bad path; over the server's limit of
	// one upload, 1 GiB), quota_exceeded (larger than the disk limit, or
	// the workspace is full), conflict (a directory is in the way; not
	// running; permission bits).
	WriteFile(ctx context.Context, id, path string, r io.Reader, mode uint32) (*FileInfo, error)
	// ReadFile opens a file for reading. Errors: not_found, invalid (a
	// directory), conflict (not running; permission bits).
	ReadFile(ctx context.Context, id, path string) (io.ReadCloser, *FileInfo, error)
	// ReadFileRange is ReadFile of the part of the file from byte offset,
	// at most length bytes (0: to its end); the bytes before offset are
	// not read. An offset at or past the end reads nothing. The FileInfo
	// is the whole file's. Errors: those of ReadFile; invalid for a
	// negative offset or length.
	ReadFileRange(ctx context.Context, id, path string, offset, length int64) (io.ReadCloser, *FileInfo, error)
	// StatFile describes a file or directory. Errors: not_found, invalid
	// (bad path), conflict (not running; permission bits).
	StatFile(ctx context.Context, id, path string) (*FileInfo, error)
	// ListFiles lists a directory (recursively: its whole tree).
	// Errors: not_found, invalid (not a directory), conflict (not
	// running; permission bits).
	ListFiles(ctx context.Context, id, path string, recursive bool) ([]*FileInfo, error)
	// MakeDir creates a directory and its parents. Errors: not_found (the
	// sandbox), invalid (bad path), conflict (a file in the way; not
	// running; permission bits).
	MakeDir(ctx context.Context, id, path string) (*FileInfo, error)
	// MoveFile renames a file or directory. Errors: not_found, invalid
	// (bad path; across a file system), conflict (the target exists; not
	// running; permission bits).
	MoveFile(ctx context.Context, id, from, to string) (*FileInfo, error)
	// DeleteFile removes a file, or a directory with recursive. Deleting
	// what does not exist (also a second delete) is not_found.
	// Errors: not_found, conflict (non-empty directory without
	// recursive; not running; permission bits), invalid (the workspace
	// itself).
	DeleteFile(ctx context.Context, id, path string, recursive bool) error
	// ChmodFile sets permission bits. Errors: not_found, invalid,
	// conflict (not running).
	ChmodFile(ctx context.Context, id, path string, mode uint32) (*FileInfo, error)
	// SearchFiles finds files by name glob and/or lines by content.
	// Errors: not_found, invalid, conflict (not running).
	SearchFiles(ctx context.Context, id string, req SearchRequest) (*SearchResult, error)
	// ReplaceInFiles replaces text in files. Errors: not_found, invalid,
	// conflict (not running; permission bits; a file changed meanwhile).
	ReplaceInFiles(ctx context.Context, id string, req ReplaceRequest) ([]*ReplaceResult, error)
	// DownloadArchive packs a directory as "tar" or "zip".
	// Errors: not_found, invalid, conflict (not running).
	DownloadArchive(ctx context.Context, id, path, format string) (io.ReadCloser, error)
	// UploadArchive extracts a tar stream into a directory, refusing
	// entries that would leave it, links out of it and archive bombs,
	// all or nothing: a refused archive leaves nothing behind.
	// Errors: not_found, invalid, conflict (a file or directory in the
	// way; not running; permission bits).
	UploadArchive(ctx context.Context, id, path string, r io.Reader) error
	// UploadFiles writes the files that next returns, until it returns
	// io.EOF, all or nothing: each replaces a file at its path, creating
	// parents, once every one was received and found valid; on error
	// none is written (quota_exceeded: more than the sandbox's disk limit). It describes the files written, in order. If next
	// fails, that error is returned wrapped in an invalid error.
	// Errors: not_found, invalid (a bad path; more than the disk limit in
	// all), conflict (a file or directory in the way; not running;
	// permission bits).
	UploadFiles(ctx context.Context, id string, next func() (*FileUpload, error)) ([]*FileInfo, error)

	// CreateContext starts a stateful interpreter (python, javascript,
	// typescript) in a sandbox. Errors: not_found, invalid (language,
	// cwd), conflict (not running; the most contexts a sandbox may have;
	// its process limit), unavailable (the interpreter is not installed
	// or did not start).
	CreateContext(ctx context.Context, id string, spec ContextSpec) (*Context, error)
	// ListContexts lists a sandbox's contexts. Errors: not_found.
	ListContexts(ctx context.Context, id string) ([]*Context, error)
	// GetContext returns one context. Errors: not_found, conflict (not
	// running).
	GetContext(ctx context.Context, id, contextID string) (*Context, error)
	// RestartContext replaces a context's interpreter with a fresh one,
	// losing its state. Errors: not_found, conflict (not running; the
	// sandbox's process limit), unavailable (the new interpreter did not
	// start).
	RestartContext(ctx context.Context, id, contextID string) (*Context, error)
	// DeleteContext ends a context. Errors: not_found, conflict (not
	// running).
	DeleteContext(ctx context.Context, id, contextID string) error
	// RunCell runs code in a context and streams its events: stdout,
	// stderr, result, display, exception, and exit last. Cancelling ctx
	// or closing the stream interrupts the cell. A cell that raises ends
	// with verdict error. A cell sent while another runs waits for it a
	// moment (0.3 s; up to 2 s for one being interrupted), then is
	// refused. Errors: not_found, invalid, conflict (not
	// running; a cell is already running in the context), quota_exceeded
	// (the key's concurrent executions), unavailable (cove is shutting
	// down; the interpreter, which had ended, did not start again).
	RunCell(ctx context.Context, id, contextID string, req CellRequest) (Stream, error)
	// InterruptContext interrupts the running cell of a context (Python
	// gets KeyboardInterrupt); the context survives. Interrupting an idle
	// context succeeds. Errors: not_found, conflict (not running).
	InterruptContext(ctx context.Context, id, contextID string) error

	// Analyze asks Claude to explain, review, optimize or fix code, with
	// what the code did when it ran, and streams the answer. Errors:
	// invalid, unavailable (no API key configured: the message names the
	// variable), and the API's failures classified.
	Analyze(ctx context.Context, req AIRequest) (AIStream, error)

	// CreateKey creates an API key; the secret is returned only here.
	// Errors: forbidden (not an admin), invalid.
	CreateKey(ctx context.Context, spec KeySpec) (*NewKey, error)
	// ListKeys lists keys. Errors: forbidden (not an admin).
	ListKeys(ctx context.Context) ([]*Key, error)
	// RevokeKey revokes a key; its sandboxes stay until deleted by an
	// admin. Errors: forbidden (not an admin), not_found, conflict (the
	// caller's own key, or the last admin key).
	RevokeKey(ctx context.Context, id string) error
	// WhoAmI describes the key in ctx. Errors: unauthorized.
	WhoAmI(ctx context.Context) (*Key, error)

	// Version describes the service.
	Version(ctx context.Context) (*VersionInfo, error)
}
