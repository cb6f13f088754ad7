package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// access says who may call a route.
type access int

const (
	accessPublic  access = iota // anyone
	accessKey                   // any valid key
	accessMetrics               // an admin key, or anyone with Options.PublicMetrics
)

// route is one operation of the API. The table below is the only list of
// routes: the mux is built from it and a test checks it against the
// OpenAPI document both ways.
type route struct {
	Method  string
	Pattern string // a ServeMux path pattern
	Access  access
	// QueryToken accepts the key as ?access_token= too, for browsers'
	// WebSockets, which cannot set headers.
	QueryToken bool
	Handle     func(*server, http.ResponseWriter, *http.Request) error
}

var routes = []route{
	{Method: "GET", Pattern: "/healthz", Access: accessPublic, Handle: (*server).health},
	{Method: "GET", Pattern: "/v1/openapi.json", Access: accessPublic, Handle: (*server).openAPI},
	{Method: "GET", Pattern: "/metrics", Access: accessMetrics, Handle: (*server).metrics},
	{Method: "GET", Pattern: "/v1/version", Access: accessKey, Handle: (*server).version},
	{Method: "GET", Pattern: "/v1/whoami", Access: accessKey, Handle: (*server).whoAmI},

	{Method: "POST", Pattern: "/v1/sandboxes", Access: accessKey, Handle: (*server).createSandbox},
	{Method: "GET", Pattern: "/v1/sandboxes", Access: accessKey, Handle: (*server).listSandboxes},
	{Method: "GET", Pattern: "/v1/sandboxes/{id}", Access: accessKey, Handle: (*server).getSandbox},
	{Method: "PATCH", Pattern: "/v1/sandboxes/{id}", Access: accessKey, Handle: (*server).updateSandbox},
	{Method: "DELETE", Pattern: "/v1/sandboxes/{id}", Access: accessKey, Handle: (*server).deleteSandbox},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/stop", Access: accessKey, Handle: (*server).stopSandbox},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/start", Access: accessKey, Handle: (*server).startSandbox},

	{Method: "POST", Pattern: "/v1/sandboxes/{id}/exec", Access: accessKey, Handle: (*server).exec},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/code", Access: accessKey, Handle: (*server).runCode},
	{Method: "POST", Pattern: "/v1/run", Access: accessKey, Handle: (*server).run},
	{Method: "POST", Pattern: "/v1/executions/{eid}/stop", Access: accessKey, Handle: (*server).stopExecution},

	{Method: "POST", Pattern: "/v1/sandboxes/{id}/contexts", Access: accessKey, Handle: (*server).createContext},
	{Method: "GET", Pattern: "/v1/sandboxes/{id}/contexts", Access: accessKey, Handle: (*server).listContexts},
	{Method: "GET", Pattern: "/v1/sandboxes/{id}/contexts/{cid}", Access: accessKey, Handle: (*server).getContext},
	{Method: "DELETE", Pattern: "/v1/sandboxes/{id}/contexts/{cid}", Access: accessKey, Handle: (*server).deleteContext},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/contexts/{cid}/restart", Access: accessKey, Handle: (*server).restartContext},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/contexts/{cid}/interrupt", Access: accessKey, Handle: (*server).interruptContext},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/contexts/{cid}/run", Access: accessKey, Handle: (*server).runCell},

	{Method: "POST", Pattern: "/v1/sandboxes/{id}/processes", Access: accessKey, Handle: (*server).startProcess},
	{Method: "GET", Pattern: "/v1/sandboxes/{id}/processes", Access: accessKey, Handle: (*server).listProcesses},
	{Method: "GET", Pattern: "/v1/sandboxes/{id}/processes/{pid}", Access: accessKey, Handle: (*server).getProcess},
	{Method: "DELETE", Pattern: "/v1/sandboxes/{id}/processes/{pid}", Access: accessKey, Handle: (*server).killProcess},
	{Method: "GET", Pattern: "/v1/sandboxes/{id}/processes/{pid}/logs", Access: accessKey, Handle: (*server).processLogs},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/processes/{pid}/wait", Access: accessKey, Handle: (*server).waitProcess},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/processes/{pid}/stdin", Access: accessKey, Handle: (*server).processStdin},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/processes/{pid}/signal", Access: accessKey, Handle: (*server).signalProcess},

	{Method: "GET", Pattern: "/v1/sandboxes/{id}/pty", Access: accessKey, QueryToken: true, Handle: (*server).pty},

	{Method: "GET", Pattern: "/v1/sandboxes/{id}/files", Access: accessKey, Handle: (*server).getFile},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/files", Access: accessKey, Handle: (*server).uploadFiles},
	{Method: "GET", Pattern: "/v1/sandboxes/{id}/files/{path...}", Access: accessKey, Handle: (*server).getFile},
	{Method: "HEAD", Pattern: "/v1/sandboxes/{id}/files/{path...}", Access: accessKey, Handle: (*server).headFile},
	{Method: "PUT", Pattern: "/v1/sandboxes/{id}/files/{path...}", Access: accessKey, Handle: (*server).putFile},
	{Method: "DELETE", Pattern: "/v1/sandboxes/{id}/files/{path...}", Access: accessKey, Handle: (*server).deleteFile},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/fs/mkdir", Access: accessKey, Handle: (*server).makeDir},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/fs/move", Access: accessKey, Handle: (*server).moveFile},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/fs/chmod", Access: accessKey, Handle: (*server).chmodFile},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/fs/search", Access: accessKey, Handle: (*server).searchFiles},
	{Method: "POST", Pattern: "/v1/sandboxes/{id}/fs/replace", Access: accessKey, Handle: (*server).replaceInFiles},

	{Method: "POST", Pattern: "/v1/ai/{action}", Access: accessKey, Handle: (*server).analyze},

	{Method: "POST", Pattern: "/v1/keys", Access: accessKey, Handle: (*server).createKey},
	{Method: "GET", Pattern: "/v1/keys", Access: accessKey, Handle: (*server).listKeys},
	{Method: "DELETE", Pattern: "/v1/keys/{id}", Access: accessKey, Handle: (*server).revokeKey},
}

// handler wraps a route's function: it authenticates the caller, puts its
// key in the request's context, turns a returned error into an error
// answer, recovers from panics and logs the request.
func (s *server) handler(rt route) http.Handler {
	return routeHandler(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// ServeHTTP's writer, which the metrics read, records the status.
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic serving a request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if sw.status != 0 {
					// The answer has begun: cut it off so the client sees
					// a broken response rather than a short one.
					panic(http.ErrAbortHandler)
				}
				s.writeError(sw, r, fmt.Errorf("panic: %v", p))
			}
			s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start), "key", keyID(r), "remote", r.RemoteAddr)
		}()
		if rt.Access != accessPublic && !(rt.Access == accessMetrics && s.opts.PublicMetrics) {
			key, err := s.authenticate(r, rt)
			if err != nil {
				if cove.ErrorCode(err) == cove.CodeUnauthorized {
					s.logAuthFailure(r, err)
				}
				s.writeError(sw, r, err)
				return
			}
			r = r.WithContext(cove.WithKey(r.Context(), key))
		}
		if err := rt.Handle(s, sw, r); err != nil {
			s.writeError(sw, r, err)
		}
	})
}

// keyID is the id of the request's key, for the log; "" before
// authentication and on public routes.
func keyID(r *http.Request) string {
	if k := cove.KeyFrom(r.Context()); k != nil {
		return k.ID
	}
	return ""
}

// logAuthFailure logs a request refused for its key (missing, unknown,
// revoked), with where it came from: an operator learns of a client with
// a revoked key, or of someone trying keys. The refusal log paces it, so
// that a client trying keys in a loop cannot flood the log.
func (s *server) logAuthFailure(r *http.Request, err error) {
	s.refusals.Warn(s.log, r, "authentication failed", "method", r.Method, "path", r.URL.Path, "err", cove.ErrorMessage(err))
}

// routeHandler is the handler of a route, as the mux gives it for a
// request that matches one; for others the mux gives its own handlers,
// which answer 404, 405 or a redirect.
type routeHandler func(http.ResponseWriter, *http.Request)

func (h routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h(w, r) }

func isRoute(h http.Handler) bool {
	_, ok := h.(routeHandler)
	return ok
}

// authenticate returns the key of the request's bearer token.
func (s *server) authenticate(r *http.Request, rt route) (*cove.Key, error) {
	secret := bearerToken(r)
	if secret == "" && rt.QueryToken {
		secret = r.URL.Query().Get("access_token")
	}
	var key *cove.Key
	if secret == "" && s.opts.Sessions != nil {
		k, ok, err := s.opts.Sessions.SessionKey(r)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := sameOrigin(r); err != nil {
				return nil, err
			}
			key = k
		}
	}
	if secret == "" && key == nil {
		return nil, missingKey(r.Header.Get("Authorization"))
	}
	if secret != "" {
		if s.opts.Auth == nil {
			return nil, cove.Errorf(cove.CodeUnauthorized, "this server cannot check API keys")
		}
		var err error
		if key, err = s.opts.Auth.Authenticate(r.Context(), secret); err != nil {
			return nil, err
		}
	}
	if key == nil {
		return nil, cove.Errorf(cove.CodeUnauthorized, "unknown API key")
	}
	if rt.Access == accessMetrics && !key.Admin {
		return nil, cove.Errorf(cove.CodeForbidden, "only an admin key may read metrics (unless the server sets metrics_public, COVE_METRICS_PUBLIC)")
	}
	return key, nil
}

// sameOrigin refuses a cookie-authenticated request that a page of
// another origin made (CSRF, cross-site WebSocket hijacking): a browser
// says where a request comes from in Sec-Fetch-Site and Origin. Another
// port of the same host is same-site, so the SameSite cookie alone does
// not stop it. A request with neither header (an older browser) may only
// read.
func sameOrigin(r *http.Request) error {
	refuse := func(from string) error {
		return cove.Errorf(cove.CodeForbidden,
			"refused a request from %s: the session cookie only works for pages of this server", cove.Excerpt(from, 64))
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin":
		return nil
	case "none":
		// The user opened the URL themselves (address bar, bookmark).
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && !isWebSocket(r) {
			return nil
		}
		return refuse("outside a page")
	case "":
	default:
		return refuse("a " + site + " page")
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
			return nil
		}
		return refuse(origin)
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if !isWebSocket(r) {
			return nil
		}
	}
	return refuse("a page that did not say its origin")
}

// missingKey says what is wrong with a request whose Authorization
// header carries no bearer key. It never repeats the header, except a
// word that can only be a scheme's name: a client that leaves out
// "Bearer " sends the key itself there, and the answer and the log must
// not show it.
func missingKey(header string) error {
	scheme, _, _ := strings.Cut(header, " ")
	switch {
	case header == "" || strings.EqualFold(scheme, "Bearer"):
		return cove.Errorf(cove.CodeUnauthorized, "missing API key: send Authorization: Bearer <key>")
	case len(header) >= len(keyPrefix) && strings.EqualFold(header[:len(keyPrefix)], keyPrefix):
		return cove.Errorf(cove.CodeUnauthorized, "missing API key: the Authorization header holds what looks like a key without \"Bearer \" before it; send it as Authorization: Bearer <key>")
	case isSchemeName(scheme):
		return cove.Errorf(cove.CodeUnauthorized, "missing API key: Authorization: %s is not accepted; send the key as Authorization: Bearer <key>", scheme)
	}
	return cove.Errorf(cove.CodeUnauthorized, "missing API key: the Authorization header must be \"Bearer <key>\"")
}

// keyPrefix begins every secret that cove makes (store.SecretPrefix).
const keyPrefix = "cove_"

// isSchemeName says whether s is short and all ASCII letters, as the
// names of authentication schemes (Basic, Digest, Token) are, and a
// secret hardly ever is.
func isSchemeName(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// noRoute answers a request that matches no route, or a route with another
// method, in JSON.
func (s *server) noRoute(w http.ResponseWriter, r *http.Request) {
	// Let the mux decide between 404 and 405 (and which methods to allow).
	rec := &headerRecorder{header: http.Header{}}
	h, _ := s.mux.Handler(r)
	h.ServeHTTP(rec, r)
	if allow := rec.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	if rec.status == http.StatusMethodNotAllowed {
		s.writeError(w, r, statusError(http.StatusMethodNotAllowed, cove.Errorf(cove.CodeInvalid, "method %s is not allowed here (allowed: %s)", r.Method, rec.header.Get("Allow"))))
		return
	}
	// Clients tell a route the server does not have, which means a wrong
	// server URL to a client that builds only the API's paths, from a
	// resource that is not found, without reading the message.
	w.Header().Set(wire.HeaderNoRoute, "1")
	if loc := rec.header.Get("Location"); loc != "" && rec.status >= 300 && rec.status < 400 {
		// The mux would redirect to the path with a slash added (PUT
		// .../files to .../files/): say so rather than redirect.
		s.writeError(w, r, cove.Errorf(cove.CodeNotFound, "no such route: %s %s; %s %s takes more after the slash (see /v1/openapi.json)",
			r.Method, cove.Excerpt(r.URL.Path, 64), r.Method, cove.Excerpt(loc, 64)))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1/v1/") {
		s.writeError(w, r, cove.Errorf(cove.CodeNotFound, "no such route: %s %s: the server's URL was given with /v1 at its end; give it without (http://host:port)", r.Method, cove.Excerpt(r.URL.Path, 64)))
		return
	}
	s.writeError(w, r, cove.Errorf(cove.CodeNotFound, "no such route: %s %s (see /v1/openapi.json)", r.Method, cove.Excerpt(r.URL.Path, 64)))
}

// headerRecorder records the status and headers a handler writes and
// drops its body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

// statusWriter records the status of an answer, for logs and to know
// whether an answer has begun.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
