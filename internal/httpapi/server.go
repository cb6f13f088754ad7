// Package httpapi serves a cove.Service as cove's REST API: JSON under /v1,
// output streamed as NDJSON or server-sent events, terminals over a
// WebSocket, files as raw bodies, and an OpenAPI 3.1 document of it all at
// /v1/openapi.json.
//
// The handlers only translate: they decode a request, call the Service
// with the caller's key in the context (cove.WithKey), and encode the
// answer. Errors are turned into HTTP answers in one place (errors.go)
// through cove.Codes.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cove-sandbox/cove"
)

// Authenticator turns the secret of a request's bearer token into its key.
// *service.Service implements it.
type Authenticator interface {
	// Authenticate returns the key whose secret is given.
	// Errors: unauthorized (unknown or revoked key).
	Authenticate(ctx context.Context, secret string) (*cove.Key, error)
}

// Defaults of Options.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxUploadBytes = 1 << 30
	DefaultStallTimeout   = time.Minute
	// bodyReadTimeout bounds how long a client may take to send a JSON
	// body, so that a slow client cannot hold a handler forever.
	bodyReadTimeout = 30 * time.Second
	// drainTimeout bounds how long the rest of a streamed standard input
	// is read and dropped after the answer (see decodeExecution).
	drainTimeout = 2 * time.Second
)

// Options configure the API handler.
type Options struct {
	// Auth checks bearer tokens. Without it every route that needs a key
	// answers 401: the API fails closed.
	Auth Authenticator
	// Metrics serves GET /metrics (typically promhttp.HandlerFor a
	// registry); nil answers 404. It needs an admin key unless
	// PublicMetrics is set, for a scraper on a trusted network.
	Metrics       http.Handler
	PublicMetrics bool
	// MetricsRegistry receives the API's own metrics, its requests by
	// route pattern and status and their durations, typically in the
	// registry that Metrics serves; nil records none.
	MetricsRegistry prometheus.Registerer
	// MCP serves the Model Context Protocol at /mcp (streamable HTTP, see
	// internal/mcpserver) behind the API's key authentication, with the
	// caller's key in the request's context; nil answers 404.
	MCP http.Handler
	// Logger receives request errors (internal errors with their detail
	// and id) and, at debug level, every request.
	Logger *slog.Logger
	// MaxBodyBytes bounds bodies read into memory: JSON requests and
	// process stdin (default 1 MiB). Larger ones get 413.
	MaxBodyBytes int64
	// MaxUploadBytes bounds one upload, raw, multipart or tar, and the
	// decompressed size of a gzipped tar (default 1 GiB); the sandbox's
	// disk limit, which the service enforces, usually bounds it first.
	MaxUploadBytes int64
	// StallTimeout is how long a client may stall an upload, a download,
	// a stream or a terminal (send or take nothing) before the server
	// gives up on it (default 1 minute). Slow but steady clients are not
	// affected; a client that stops reading a stream does not hold its
	// execution, and the quota it counts against, forever.
	StallTimeout time.Duration
	// WebSocketOrigins are extra browser origins (host patterns as in
	// path.Match, such as "app.example.com" or "*.example.com") allowed to
	// open a terminal; a page of the API's own host is always allowed and
	// requests without an Origin header (non-browser clients) are too.
	WebSocketOrigins []string
	// Sessions lets the web UI's pages call the API with a session cookie
	// instead of a bearer key (internal/webui implements it); nil accepts
	// bearer keys only. A request that a cookie authenticates must come
	// from a page of the server's own origin (sameOrigin), against CSRF.
	Sessions Sessions
}

// Sessions authenticates the browser sessions of the web UI.
type Sessions interface {
	// SessionKey returns the key that the request's session cookie acts
	// as, and false when the request carries no session cookie.
	// Errors: unauthorized (an unknown or expired session, or a Host
	// that is not the server's).
	SessionKey(r *http.Request) (*cove.Key, bool, error)
}

// server is the API handler.
type server struct {
	svc  cove.Service
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	// requests counts the requests by route (nil without
	// Options.MetricsRegistry).
	requests *requestMetrics

	// refusals paces the log of failed authentications (logAuthFailure)
	// and, through RefusalLog, the web UI's refusals.
	refusals *RefusalLog
	// healthLog is the last answer of the health check that was logged
	// ("" for ok), so that a change is logged once (noteHealth).
	healthLog struct {
		mu   sync.Mutex
		last string
	}
}

// New returns the API handler for svc. Serve it with an http.Server whose
// timeouts suit long streams, such as the one NewHTTPServer returns.
func New(svc cove.Service, opts Options) http.Handler {
	return newServer(svc, opts)
}

func newServer(svc cove.Service, opts Options) *server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{svc: svc, opts: opts, log: log.With("component", "httpapi"), mux: http.NewServeMux(), requests: newRequestMetrics(opts.MetricsRegistry)}
	s.refusals = NewRefusalLog(s.log)
	for _, rt := range routes {
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.handler(rt))
	}
	if opts.MCP != nil {
		// MCP has its own methods and answers; it is not a REST route.
		s.mux.Handle("/mcp", s.handler(route{Pattern: "/mcp", Access: accessKey, Handle: func(s *server, w http.ResponseWriter, r *http.Request) error {
			s.opts.MCP.ServeHTTP(w, r)
			return nil
		}}))
	}
	return s
}

// ServeHTTP answers unclean paths, unknown routes and methods with JSON
// errors, never a redirect, and hands the others to the mux. It counts
// every request in the metrics by the route pattern it matched, never by
// its raw path.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	route := routeUnmatched
	// Deferred, so that an answer cut off (http.ErrAbortHandler) counts.
	defer func() { s.requests.observe(route, sw.status, time.Since(start)) }()
	sw.Header().Set("X-Content-Type-Options", "nosniff")
	if err := checkCleanPath(r); err != nil {
		// The mux would redirect to the cleaned path, which for a file
		// path is another file than the client meant.
		s.writeError(sw, r, err)
		return
	}
	matched, pattern := s.mux.Handler(r)
	if !isRoute(matched) {
		s.noRoute(sw, r)
		return
	}
	route = pattern
	s.mux.ServeHTTP(sw, r)
}

// RefusalLog returns the log of the handler's refused requests, for a
// handler in front of it (the web UI) to log its own refusals under the
// same limit.
func (s *server) RefusalLog() *RefusalLog { return s.refusals }

// NewHTTPServer returns an http.Server for h on addr with timeouts fit for
// the API: headers must arrive within 10 s and idle connections close
// after 2 minutes, but there is no read or write timeout, since uploads
// and streams last as long as they need (JSON bodies have their own read
// deadline).
func NewHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return srv
}
