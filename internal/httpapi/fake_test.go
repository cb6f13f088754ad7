package httpapi

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/cove-sandbox/cove"
)

// fakeService is a cove.Service for handler tests of what a real service
// cannot be made to do on demand (fail internally, panic, break a stream).
// It accepts every request; err, when set, is what every call returns.
type fakeService struct {
	mu     sync.Mutex
	err    error
	events []cove.Event // what executions stream (default: an ok exit)
	// streamErr ends a stream after its events.
	streamErr error
	panicMsg  string
	last      any // the last request decoded
	// endless makes streams send output forever; closed is closed when
	// such a stream is closed.
	endless bool
	closed  chan struct{}
	// running makes WaitProcess wait until its context ends; waitFor is
	// how long its context had left when it was called.
	running bool
	waitFor time.Duration
	// stdin, with readStdin, is what an execution's StdinReader gave
	// while the request was served.
	readStdin bool
	stdin     []byte
	stdinErr  error
}

var _ cove.Service = (*fakeService)(nil)

func (f *fakeService) record(req any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	f.last = req
	return f.err
}

func fakeSandbox(id string) *cove.Sandbox {
	return &cove.Sandbox{ID: id, State: cove.StateRunning, Limits: cove.DefaultLimits(), Backend: "fake", CreatedAt: time.Unix(0, 0).UTC()}
}

func (f *fakeService) CreateSandbox(ctx context.Context, spec cove.SandboxSpec) (*cove.Sandbox, error) {
	if err := f.record(spec); err != nil {
		return nil, err
	}
	return fakeSandbox("sb1"), nil
}
func (f *fakeService) GetSandbox(ctx context.Context, id string) (*cove.Sandbox, error) {
	return fakeSandbox(id), f.record(id)
}
func (f *fakeService) ListSandboxes(ctx context.Context, opts cove.ListOptions) (*cove.SandboxList, error) {
	return &cove.SandboxList{}, f.record(opts)
}
func (f *fakeService) UpdateSandbox(ctx context.Context, id string, u cove.SandboxUpdate) (*cove.Sandbox, error) {
	return fakeSandbox(id), f.record(u)
}
func (f *fakeService) StopSandbox(ctx context.Context, id string) (*cove.Sandbox, error) {
	return fakeSandbox(id), f.record(id)
}
func (f *fakeService) StartSandbox(ctx context.Context, id string) (*cove.Sandbox, error) {
	return fakeSandbox(id), f.record(id)
}
func (f *fakeService) DeleteSandbox(ctx context.Context, id string) error { return f.record(id) }

func (f *fakeService) stream(req any) (cove.Stream, error) {
	if err := f.record(req); err != nil {
		return nil, err
	}
	if r := stdinOf(req); f.readStdin && r != nil {
		f.stdin, f.stdinErr = io.ReadAll(r)
	}
	events := append([]cove.Event(nil), f.events...)
	if events == nil && f.streamErr == nil {
		events = []cove.Event{{Type: cove.EventExit, Result: &cove.ExecResult{Verdict: cove.VerdictOK}}}
	}
	if f.endless {
		return &endlessStream{closed: f.closed}, nil
	}
	return &fakeStream{events: events, err: f.streamErr}, nil
}

// stdinOf is an execution request's streamed standard input.
func stdinOf(req any) io.Reader {
	switch r := req.(type) {
	case cove.ExecRequest:
		return r.StdinReader
	case cove.CodeRequest:
		return r.StdinReader
	case cove.RunRequest:
		return r.StdinReader
	}
	return nil
}

func (f *fakeService) Exec(ctx context.Context, id string, req cove.ExecRequest) (cove.Stream, error) {
	return f.stream(req)
}
func (f *fakeService) RunCode(ctx context.Context, id string, req cove.CodeRequest) (cove.Stream, error) {
	return f.stream(req)
}
func (f *fakeService) Run(ctx context.Context, req cove.RunRequest) (cove.Stream, error) {
	return f.stream(req)
}
func (f *fakeService) StopExecution(ctx context.Context, execID string) error {
	return f.record(execID)
}
func (f *fakeService) StartProcess(ctx context.Context, id string, req cove.ProcessRequest) (*cove.Process, error) {
	return &cove.Process{PID: 7, Cmd: req.Cmd, State: cove.ProcessRunning}, f.record(req)
}
func (f *fakeService) ListProcesses(ctx context.Context, id string) ([]*cove.Process, error) {
	return nil, f.record(id)
}
func (f *fakeService) GetProcess(ctx context.Context, id string, pid int) (*cove.Process, error) {
	return &cove.Process{PID: pid, State: cove.ProcessRunning}, f.record(pid)
}
func (f *fakeService) ProcessLogs(ctx context.Context, id string, pid int, follow bool) (cove.Stream, error) {
	return f.stream(follow)
}
func (f *fakeService) WaitProcess(ctx context.Context, id string, pid int) (*cove.Process, error) {
	if err := f.record(pid); err != nil {
		return nil, err
	}
	f.mu.Lock()
	if d, ok := ctx.Deadline(); ok {
		f.waitFor = time.Until(d)
	}
	running := f.running
	f.mu.Unlock()
	if running {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &cove.Process{PID: pid, State: cove.ProcessExited, Result: &cove.ExecResult{Verdict: cove.VerdictOK}}, nil
}
func (f *fakeService) WriteProcessStdin(ctx context.Context, id string, pid int, data []byte, eof bool) error {
	return f.record(data)
}
func (f *fakeService) SignalProcess(ctx context.Context, id string, pid int, signal string) error {
	return f.record(signal)
}
func (f *fakeService) OpenPTY(ctx context.Context, id string, req cove.PTYRequest) (cove.PTY, error) {
	if err := f.record(req); err != nil {
		return nil, err
	}
	return nil, cove.Errorf(cove.CodeUnavailable, "the fake has no terminals")
}

func fakeFile(p string) *cove.FileInfo {
	return &cove.FileInfo{Path: p, Name: p, Size: 5, Mode: 0o644, ModTime: time.Unix(0, 0).UTC()}
}
func (f *fakeService) WriteFile(ctx context.Context, id, p string, r io.Reader, mode uint32) (*cove.FileInfo, error) {
	n, rerr := io.Copy(io.Discard, r)
	if err := f.record(p); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "reading: %w", rerr)
	}
	fi := fakeFile(p)
	fi.Size = n
	return fi, nil
}
func (f *fakeService) ReadFile(ctx context.Context, id, p string) (io.ReadCloser, *cove.FileInfo, error) {
	if err := f.record(p); err != nil {
		return nil, nil, err
	}
	return io.NopCloser(strings.NewReader("hello")), fakeFile(p), nil
}
func (f *fakeService) ReadFileRange(ctx context.Context, id, p string, offset, length int64) (io.ReadCloser, *cove.FileInfo, error) {
	if err := f.record(p); err != nil {
		return nil, nil, err
	}
	if offset < 0 || length < 0 {
		// As the service answers.
		return nil, nil, cove.Errorf(cove.CodeInvalid, "offset %d, length %d", offset, length)
	}
	data := "hello"[min(offset, 5):]
	if length > 0 {
		data = data[:min(length, int64(len(data)))]
	}
	return io.NopCloser(strings.NewReader(data)), fakeFile(p), nil
}
func (f *fakeService) StatFile(ctx context.Context, id, p string) (*cove.FileInfo, error) {
	return fakeFile(p), f.record(p)
}
func (f *fakeService) ListFiles(ctx context.Context, id, p string, recursive bool) ([]*cove.FileInfo, error) {
	return nil, f.record(p)
}
func (f *fakeService) MakeDir(ctx context.Context, id, p string) (*cove.FileInfo, error) {
	return fakeFile(p), f.record(p)
}
func (f *fakeService) MoveFile(ctx context.Context, id, from, to string) (*cove.FileInfo, error) {
	return fakeFile(to), f.record(to)
}
func (f *fakeService) DeleteFile(ctx context.Context, id, p string, recursive bool) error {
	return f.record(p)
}
func (f *fakeService) ChmodFile(ctx context.Context, id, p string, mode uint32) (*cove.FileInfo, error) {
	fi := fakeFile(p)
	fi.Mode = mode
	return fi, f.record(mode)
}
func (f *fakeService) SearchFiles(ctx context.Context, id string, req cove.SearchRequest) (*cove.SearchResult, error) {
	return &cove.SearchResult{}, f.record(req)
}
func (f *fakeService) ReplaceInFiles(ctx context.Context, id string, req cove.ReplaceRequest) ([]*cove.ReplaceResult, error) {
	return nil, f.record(req)
}
func (f *fakeService) DownloadArchive(ctx context.Context, id, p, format string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(nil)), f.record(format)
}
func (f *fakeService) UploadArchive(ctx context.Context, id, p string, r io.Reader) error {
	_, rerr := io.Copy(io.Discard, r)
	if err := f.record(p); err != nil {
		return err
	}
	if rerr != nil {
		return cove.Errorf(cove.CodeInvalid, "reading: %w", rerr)
	}
	return nil
}
func (f *fakeService) UploadFiles(ctx context.Context, id string, next func() (*cove.FileUpload, error)) ([]*cove.FileInfo, error) {
	var fis []*cove.FileInfo
	for {
		u, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, cove.Errorf(cove.CodeInvalid, "reading the upload: %w", err)
		}
		n, err := io.Copy(io.Discard, u.Body)
		if err != nil {
			return nil, cove.Errorf(cove.CodeInvalid, "reading the upload: %w", err)
		}
		fi := fakeFile(u.Path)
		fi.Size, fi.Mode = n, u.Mode
		fis = append(fis, fi)
	}
	return fis, f.record(len(fis))
}
func (f *fakeService) CreateKey(ctx context.Context, spec cove.KeySpec) (*cove.NewKey, error) {
	return &cove.NewKey{Key: cove.Key{ID: "k1", Quota: spec.Quota}, Secret: "s"}, f.record(spec)
}
func (f *fakeService) ListKeys(ctx context.Context) ([]*cove.Key, error) { return nil, f.record(nil) }
func (f *fakeService) RevokeKey(ctx context.Context, id string) error    { return f.record(id) }
func (f *fakeService) WhoAmI(ctx context.Context) (*cove.Key, error) {
	return cove.KeyFrom(ctx), f.record(nil)
}
func (f *fakeService) Version(ctx context.Context) (*cove.VersionInfo, error) {
	return &cove.VersionInfo{Version: "test"}, f.record(nil)
}

// fakeStream streams fixed events, then ends with err (io.EOF if nil).
type fakeStream struct {
	events []cove.Event
	err    error
}

func (s *fakeStream) Next() (cove.Event, error) {
	if len(s.events) == 0 {
		if s.err != nil {
			return cove.Event{}, s.err
		}
		return cove.Event{}, io.EOF
	}
	ev := s.events[0]
	s.events = s.events[1:]
	return ev, nil
}
func (s *fakeStream) Close() error { return nil }

// fakeAuth accepts "admin" (an admin key) and "user".
type fakeAuth struct{ err error }

func (a fakeAuth) Authenticate(ctx context.Context, secret string) (*cove.Key, error) {
	if a.err != nil {
		return nil, a.err
	}
	switch secret {
	case "admin":
		return &cove.Key{ID: "admin", Admin: true}, nil
	case "user":
		return &cove.Key{ID: "user"}, nil
	}
	return nil, cove.Errorf(cove.CodeUnauthorized, "unknown API key")
}

// endlessStream sends 64 KiB of output at a time, forever.
type endlessStream struct {
	closed chan struct{}
	once   sync.Once
}

func (s *endlessStream) Next() (cove.Event, error) {
	return cove.Event{Type: cove.EventStdout, Data: bytes.Repeat([]byte("x"), 64<<10)}, nil
}

func (s *endlessStream) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (f *fakeService) CreateContext(ctx context.Context, id string, spec cove.ContextSpec) (*cove.Context, error) {
	if err := f.record(spec); err != nil {
		return nil, err
	}
	return &cove.Context{ID: "ctx1", SandboxID: id, Language: spec.Language, Cwd: "/workspace", CreatedAt: time.Unix(0, 0).UTC()}, nil
}

func (f *fakeService) ListContexts(ctx context.Context, id string) ([]*cove.Context, error) {
	return nil, f.record(id)
}

func (f *fakeService) GetContext(ctx context.Context, id, contextID string) (*cove.Context, error) {
	if err := f.record(contextID); err != nil {
		return nil, err
	}
	return &cove.Context{ID: contextID, SandboxID: id, Language: "python", Cwd: "/workspace", CreatedAt: time.Unix(0, 0).UTC()}, nil
}

func (f *fakeService) RestartContext(ctx context.Context, id, contextID string) (*cove.Context, error) {
	return f.GetContext(ctx, id, contextID)
}

func (f *fakeService) DeleteContext(ctx context.Context, id, contextID string) error {
	return f.record(contextID)
}

func (f *fakeService) RunCell(ctx context.Context, id, contextID string, req cove.CellRequest) (cove.Stream, error) {
	return f.stream(req)
}

func (f *fakeService) InterruptContext(ctx context.Context, id, contextID string) error {
	return f.record(contextID)
}

func (f *fakeService) Analyze(ctx context.Context, req cove.AIRequest) (cove.AIStream, error) {
	return nil, f.record(req)
}
