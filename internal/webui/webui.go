// Package webui serves cove's web UI: the single-page application built
// from web/ (embedded from dist/, which `make ui` writes), the login link
// that `cove serve` prints, the browser sessions that the REST API accepts
// in place of a bearer key, and the Host check that keeps a DNS-rebinding
// page away from the server.
//
// The UI only calls the REST API, as every other client does. Its pages
// are static; what they show comes from the API with the session cookie,
// which internal/httpapi accepts through the Sessions interface only from
// pages of the server's own origin.
package webui

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/httpapi"
	"github.com/cove-sandbox/cove/internal/wire"
)

//go:embed dist
var dist embed.FS

// Authenticator turns an API key's secret into its key. *service.Service
// implements it.
type Authenticator interface {
	// Authenticate returns the key whose secret is given.
	// Errors: unauthorized (unknown or revoked key).
	Authenticate(ctx context.Context, secret string) (*cove.Key, error)
}

// Options configure the UI.
type Options struct {
	// Auth checks the key that a session acts as, on every request, so
	// that revoking the key ends its sessions. Required.
	Auth Authenticator
	// LoginToken is the secret of the login link; empty makes a random
	// one (see LoginURL).
	LoginToken string
	// LoginSecret is the API key secret that a session opened with the
	// login token acts as (cove serve gives the admin key's). A session
	// opened by pasting an API key on the login page acts as that key.
	LoginSecret string
	// ListenAddr is the address the server listens on ("127.0.0.1:7070",
	// "[::]:7070"); requests must name it, a loopback name with its port,
	// or PublicURL's host in their Host header.
	ListenAddr string
	// PublicURL is the server's address as browsers reach it when that is
	// not the listen address (a name, a reverse proxy), such as
	// "https://cove.example.com". An https URL makes the cookie Secure.
	PublicURL string
	// SessionTTL is how long a session lasts without use (default 7
	// days). Sessions live in memory: a restart ends them.
	SessionTTL time.Duration
	// Logger receives logins and refusals.
	Logger *slog.Logger
}

// UI is the web UI's handler and session keeper.
type UI struct {
	opts     Options
	log      *slog.Logger
	hosts    hostPolicy
	assets   fs.FS
	index    []byte
	sessions *sessions
	// refusals paces the log of refused requests when the handler that
	// Wrap wraps has no refusal log of its own to share.
	refusals *httpapi.RefusalLog
}

var _ httpapi.Sessions = (*UI)(nil)

// New returns the UI. Errors: invalid (a malformed ListenAddr or
// PublicURL, no Auth).
func New(opts Options) (*UI, error) {
	if opts.Auth == nil {
		return nil, cove.Errorf(cove.CodeInvalid, "the web UI needs an authenticator")
	}
	if opts.LoginToken == "" {
		opts.LoginToken = randomToken()
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 7 * 24 * time.Hour
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hosts, err := newHostPolicy(opts.ListenAddr, opts.PublicURL)
	if err != nil {
		return nil, err
	}
	assets, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "the embedded UI: %w", err)
	}
	index, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "this cove was built without its web UI (run make ui): %w", err)
	}
	log = log.With("component", "webui")
	return &UI{
		opts: opts, log: log, hosts: hosts,
		assets: assets, index: index,
		sessions: newSessions(opts.SessionTTL),
		refusals: httpapi.NewRefusalLog(log),
	}, nil
}

// LoginURL returns the login link for a server at base ("http://HOST:PORT"):
// opening it in a browser opens a session.
func (u *UI) LoginURL(base string) string {
	return strings.TrimRight(base, "/") + "/login?token=" + u.opts.LoginToken
}

// Wrap returns a handler that serves the UI's own paths (/, /login,
// /logout, /assets/...) and hands every other request to api. Requests
// whose Host is not the server's are refused first (DNS rebinding),
// except API requests that carry a key of their own, which a rebinding
// page cannot know, and health checks, which say nothing.
//
// Refusals (a foreign Host, a wrong login token or key) are logged via the
// refusal log of api when it has one (httpapi's handler does), so that
// one limit paces them and the API's failed authentications together.
func (u *UI) Wrap(api http.Handler) http.Handler {
	refusals := u.refusals
	if shared, ok := api.(interface{ RefusalLog() *httpapi.RefusalLog }); ok {
		refusals = shared.RefusalLog()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		own := u.ownsPath(r.URL.Path)
		exempt := !own && (carriesKey(r) || r.URL.Path == "/healthz")
		if !exempt && !u.hosts.allowed(r.Host) {
			refusals.Warn(u.log, r, "refused a request for another host", "host", cove.Excerpt(r.Host, 64), "path", r.URL.Path)
			writeError(w, http.StatusMisdirectedRequest, cove.CodeUnauthorized,
				"this server does not answer for host "+cove.Excerpt(r.Host, 64)+": open it by its own address, or set COVE_PUBLIC_URL")
			return
		}
		if !own {
			api.ServeHTTP(w, r)
			return
		}
		switch {
		case r.URL.Path == "/login":
			u.login(w, r, refusals)
		case r.URL.Path == "/logout":
			u.logout(w, r)
		default:
			u.static(w, r)
		}
	})
}

// ownsPath says whether path is the UI's rather than the API's.
func (u *UI) ownsPath(p string) bool {
	switch {
	case p == "/", p == "/index.html", p == "/login", p == "/logout", p == "/favicon.svg":
		return true
	case strings.HasPrefix(p, "/assets/"):
		return true
	}
	return false
}

// carriesKey says whether a request authenticates with a key of its own
// rather than a cookie.
func carriesKey(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.URL.Query().Has("access_token")
}

// securityHeaders are set on every page and asset: no framing, no
// referrer (the login link carries a secret), and a content security
// policy that allows only the bundle's own scripts. Styles may be inline
// because the editor and the terminal set them at run time; images may be
// data: URLs for the notebook's charts.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
		"img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; "+
		"base-uri 'none'; form-action 'self'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// static serves index.html (never cached: it names the current assets)
// and the hashed assets (cached for good), gzipped where the client takes
// it.
func (u *UI) static(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, cove.CodeInvalid, "method "+r.Method+" is not allowed here")
		return
	}
	h := w.Header()
	securityHeaders(h)
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" || name == "index.html" {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Length", strconv.Itoa(len(u.index)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(u.index)
		}
		return
	}
	if strings.Contains(name, "..") || strings.HasSuffix(name, ".gz") {
		writeError(w, http.StatusNotFound, cove.CodeNotFound, "no such file: "+r.URL.Path)
		return
	}
	file := name
	h.Set("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		if _, err := fs.Stat(u.assets, name+".gz"); err == nil {
			file = name + ".gz"
			h.Set("Content-Encoding", "gzip")
		}
	}
	b, err := fs.ReadFile(u.assets, file)
	if err != nil {
		h.Del("Content-Encoding")
		writeError(w, http.StatusNotFound, cove.CodeNotFound, "no such file: "+r.URL.Path)
		return
	}
	h.Set("Content-Type", contentType(name))
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if strings.HasPrefix(name, "assets/") {
		// Asset names carry a hash of their content.
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(b)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".html":
		return "text/html; charset=utf-8"
	case ".woff2":
		return "font/woff2"
	}
	return "application/octet-stream"
}

// writeError answers with a JSON error in the API's shape.
func writeError(w http.ResponseWriter, status int, code cove.Code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(&wire.ErrorBody{Error: wire.ErrorDetail{Code: string(code), Message: msg}})
}

func randomToken() string {
	var b [24]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
