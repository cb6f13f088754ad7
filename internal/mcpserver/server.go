// Package mcpserver serves a cove.Service over the Model Context Protocol,
// so that AI agents (Claude Desktop, Claude Code, Cursor, agent frameworks
// through their MCP adapters) use cove's sandboxes as their code-execution
// tools.
//
// It only translates: tool arguments become Service requests, results are
// formatted as text a model can act on (with structured content beside
// it), and errors become tool results with isError set. The one piece of
// state it keeps is per MCP session: the sandboxes the session created,
// which are deleted when the session ends unless the agent asked to keep
// them, and the stateful contexts run_in_context made for it.
//
// Run serves one session over a transport (standard input and output for
// `cove mcp`); Handler serves streamable HTTP for `cove serve`, behind the
// API's key authentication.
package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

// Defaults of Options.
const (
	DefaultMaxOutputChars = 20000
	DefaultSessionTimeout = 30 * time.Minute
)

// Options configure a Server.
type Options struct {
	// Logger receives the server's log (never standard output, which is
	// the protocol's for `cove mcp`).
	Logger *slog.Logger
	// MaxOutputChars caps each of stdout and stderr as shown to the model
	// (default 20000): the start and the end are kept, the middle is cut
	// with a note saying so.
	MaxOutputChars int
	// SessionTimeout ends an HTTP session after this long without a
	// request (default 30 minutes); its sandboxes go with it.
	SessionTimeout time.Duration
	// InProcess says that the service runs in the server's own process
	// (cove mcp without a cove server), so that its sandboxes end with
	// the process: keep is refused, and the instructions say so.
	InProcess bool
}

// Server is cove's MCP server.
type Server struct {
	svc  cove.Service
	opts Options
	log  *slog.Logger
	mcp  *mcp.Server
	// inputs are the input schemas of the tools, by name.
	inputs map[string]*jsonschema.Schema

	mu       sync.Mutex
	sessions map[*mcp.ServerSession]*session
	closed   bool
}

// instructions tell the model what cove is and which tool to reach for.
const instructions = `cove runs code in isolated Linux sandboxes on the user's machine: Python, JavaScript (Node), TypeScript and bash, with limits on memory, CPU, processes, disk, time and output. Packages installed on the host are available. A sandbox reaches no other host unless it is created with the network argument, which names the hosts it may reach over HTTP(S) through cove's proxy; pip install needs network "pypi.org,files.pythonhosted.org" and a virtual environment (python3 -m venv .venv).

- run_code runs a one-off program in a fresh sandbox that is removed afterwards; give it files to work on.
- create_sandbox makes a workspace (/workspace) that keeps its files between calls; then use run_code, exec_command, write_file, read_file, list_files, start_process with its sandbox_id.
- run_in_context runs Python, JavaScript or TypeScript statefully, like a notebook: variables, imports and functions persist between calls; charts come back as images.
- Sandboxes are independent: call tools for several sandboxes in parallel.
- Sandboxes this session creates are deleted when the session ends, unless created with keep: true.`

// inProcessInstructions replace the last line of instructions when the
// sandboxes run in the MCP server's own process.
const inProcessInstructions = `- Sandboxes run in this MCP server's own process and last as long as it: those this session creates are deleted when the session ends, and keep is not available (a human can connect cove mcp to a cove server, with COVE_URL, to keep sandboxes).`

// serverInstructions are the instructions for the server's mode.
func serverInstructions(inProcess bool) string {
	if !inProcess {
		return instructions
	}
	i := strings.LastIndex(instructions, "\n- ")
	return instructions[:i+1] + inProcessInstructions
}

// New returns an MCP server for svc.
func New(svc cove.Service, opts Options) *Server {
	if opts.MaxOutputChars <= 0 {
		opts.MaxOutputChars = DefaultMaxOutputChars
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, opts: opts, log: log.With("component", "mcpserver"), sessions: map[*mcp.ServerSession]*session{},
		inputs: map[string]*jsonschema.Schema{}}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "cove", Title: "cove sandboxes", Version: cove.Version}, &mcp.ServerOptions{
		Instructions: serverInstructions(opts.InProcess),
		Logger:       s.log,
		// Tools and resources are all there is; no logging capability.
		Capabilities: &mcp.ServerCapabilities{},
	})
	s.addTools()
	s.addResources()
	s.mcp.AddReceivingMiddleware(s.checkArguments)
	return s
}

// Run serves one session over t (for `cove mcp`, standard input and
// output) until the client ends it or ctx is cancelled, then deletes the
// sandboxes the session created and did not ask to keep. Its errors: a
// session that cannot start (unavailable), and one that the client ended
// by sending what is not JSON (invalid, a *NotJSONError).
func (s *Server) Run(ctx context.Context, t mcp.Transport) error {
	ss, err := s.mcp.Connect(ctx, t, nil)
	if err != nil {
		return cove.Errorf(cove.CodeUnavailable, "starting the MCP session: %w", err)
	}
	ended := make(chan error, 1)
	go func() { ended <- ss.Wait() }()
	select {
	case err = <-ended:
	case <-ctx.Done():
		ss.Close()
		<-ended
		err = nil
	}
	s.endSession(ss)
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return &NotJSONError{Err: err}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Debug("session ended", "err", err)
	}
	return nil
}

// NotJSONError ends a session whose client sent a line that is not JSON,
// which MCP's JSON-RPC cannot read past: the session ends there. Its
// Parse is the JSON-RPC answer for it (code -32700, id null), for a
// transport to send before it closes.
type NotJSONError struct{ Err error }

func (e *NotJSONError) Error() string {
	return "the MCP client sent a line that is not JSON-RPC (" + e.Err.Error() + "): each line must be one JSON-RPC message"
}

func (e *NotJSONError) Unwrap() error {
	return &cove.Error{Code: cove.CodeInvalid, Message: e.Error()}
}

// Parse returns the JSON-RPC parse error answer, one line.
func (e *NotJSONError) Parse() []byte {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32700, "message": "Parse error: " + e.Err.Error()}})
	return append(b, '\n')
}

// Handler serves MCP over streamable HTTP. It must be mounted behind
// cove's API-key authentication, which puts the caller's key in the
// request's context (cove.WithKey); requests without one get 401. A
// session belongs to the key that opened it: another key cannot use it.
func (s *Server) Handler() http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, &mcp.StreamableHTTPOptions{
		SessionTimeout: s.opts.SessionTimeout,
		Logger:         s.log,
	})
	verify := func(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		key := cove.KeyFrom(r.Context())
		if key == nil {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: key.ID, Extra: map[string]any{keyExtra: key}}, nil
	}
	return auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
}

// keyExtra names the caller's key in an HTTP request's token info.
const keyExtra = "cove.key"

// callContext returns ctx acting for the key of the HTTP request that
// carried a call, if any (over stdio the service is the caller's own).
func callContext(ctx context.Context, extra *mcp.RequestExtra) context.Context {
	if extra != nil && extra.TokenInfo != nil {
		if key, ok := extra.TokenInfo.Extra[keyExtra].(*cove.Key); ok {
			return cove.WithKey(ctx, key)
		}
	}
	return ctx
}

// Close ends every session's bookkeeping: the sandboxes sessions created
// and did not ask to keep are deleted, and sandboxes created from now on
// are deleted at once. Call it before the service shuts down. It returns
// ctx.Err() if ctx ends first.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, st := range s.sessions {
		all = append(all, st)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, st := range all {
			wg.Go(st.end)
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
