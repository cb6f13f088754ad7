package webui

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/httpapi"
)

// maxSessions bounds the sessions kept in memory; the oldest go first.
const maxSessions = 10000

// session is a browser's login: the API key secret it acts as.
type session struct {
	secret   string
	lastUsed time.Time
}

// sessions are the open browser sessions, by cookie value.
type sessions struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[string]*session{}}
}

// open starts a session acting as secret and returns its cookie value.
func (s *sessions) open(secret string) string {
	id := randomToken() + randomToken()
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		var oldest string
		for k, v := range s.m {
			if now.Sub(v.lastUsed) > s.ttl {
				delete(s.m, k)
			} else if oldest == "" || v.lastUsed.Before(s.m[oldest].lastUsed) {
				oldest = k
			}
		}
		if len(s.m) >= maxSessions {
			delete(s.m, oldest)
		}
	}
	s.m[id] = &session{secret: secret, lastUsed: now}
	return id
}

// get returns the secret of the session id, renewing it, or "" when there
// is no such live session.
func (s *sessions) get(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	if ss == nil {
		return ""
	}
	now := time.Now()
	if now.Sub(ss.lastUsed) > s.ttl {
		delete(s.m, id)
		return ""
	}
	ss.lastUsed = now
	return ss.secret
}

func (s *sessions) close(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// cookieName is the session cookie's name. Cookies are shared by every
// port of a host, so the name carries the port: two servers on one
// machine keep their own sessions.
func (u *UI) cookieName() string {
	if u.hosts.port != "" {
		return "cove_session_" + u.hosts.port
	}
	return "cove_session"
}

// SessionKey implements httpapi.Sessions: the key of the request's
// session cookie. Errors: unauthorized.
func (u *UI) SessionKey(r *http.Request) (*cove.Key, bool, error) {
	c, err := r.Cookie(u.cookieName())
	if err != nil || c.Value == "" {
		return nil, false, nil
	}
	if !u.hosts.allowed(r.Host) {
		return nil, true, cove.Errorf(cove.CodeUnauthorized, "this server does not answer for host %s", cove.Excerpt(r.Host, 64))
	}
	secret := u.sessions.get(c.Value)
	if secret == "" {
		return nil, true, cove.Errorf(cove.CodeUnauthorized, "your session has ended: log in again, with the newest login link (cove serve prints it, or writes it to login.url in its data directory) or an API key")
	}
	key, err := u.opts.Auth.Authenticate(r.Context(), secret)
	if err != nil {
		return nil, true, err
	}
	return key, true, nil
}

// loginRequest is the body of POST /login.
type loginRequest struct {
	// Token is the login link's token or an API key.
	Token string `json:"token"`
}

// login opens a session: GET /login?token=... (the link cove serve
// prints) redirects to the UI with the cookie set; POST /login with
// {"token": ...} (the login form, where an API key works too) answers 204.
// A wrong token is logged through refusals, which paces the log.
func (u *UI) login(w http.ResponseWriter, r *http.Request, refusals *httpapi.RefusalLog) {
	securityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet:
		token := r.URL.Query().Get("token")
		if token == "" || !u.checkToken(token) {
			refusals.Warn(u.log, r, "refused a login link with a wrong token")
			http.Redirect(w, r, "/#login-failed", http.StatusSeeOther)
			return
		}
		u.setSession(w, u.opts.LoginSecret)
		u.log.Info("browser logged in with the login link", "remote", r.RemoteAddr)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	case http.MethodPost:
		if !sameOriginPage(r) {
			writeError(w, http.StatusForbidden, cove.CodeForbidden, "log in from this server's own page")
			return
		}
		var req loginRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, cove.CodeInvalid, "send {\"token\": \"...\"} as JSON")
			return
		}
		token := strings.TrimSpace(req.Token)
		if rest, ok := strings.CutPrefix(token, "token="); ok {
			token = rest
		} else if i := strings.Index(token, "/login?token="); i >= 0 {
			token = token[i+len("/login?token="):]
		}
		secret := ""
		if token != "" && u.checkToken(token) {
			secret = u.opts.LoginSecret
		} else if token != "" {
			if _, err := u.opts.Auth.Authenticate(r.Context(), token); err == nil {
				secret = token
			}
		}
		if secret == "" {
			refusals.Warn(u.log, r, "refused a login with a wrong token or key")
			writeError(w, http.StatusUnauthorized, cove.CodeUnauthorized, "that is neither this server's login token nor an API key")
			return
		}
		u.setSession(w, secret)
		u.log.Info("browser logged in with the login form", "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, cove.CodeInvalid, "method "+r.Method+" is not allowed here")
	}
}

// logout answers POST /logout: the session ends and its cookie goes.
func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, cove.CodeInvalid, "log out with POST /logout")
		return
	}
	if !sameOriginPage(r) {
		writeError(w, http.StatusForbidden, cove.CodeForbidden, "log out from this server's own page")
		return
	}
	if c, err := r.Cookie(u.cookieName()); err == nil {
		u.sessions.close(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: u.cookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: u.secure()})
	w.WriteHeader(http.StatusNoContent)
}

func (u *UI) checkToken(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), []byte(u.opts.LoginToken)) == 1
}

func (u *UI) secure() bool { return strings.HasPrefix(u.opts.PublicURL, "https:") }

func (u *UI) setSession(w http.ResponseWriter, secret string) {
	http.SetCookie(w, &http.Cookie{
		Name: u.cookieName(), Value: u.sessions.open(secret), Path: "/",
		MaxAge: int(u.opts.SessionTTL / time.Second), HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: u.secure(),
	})
}

// sameOriginPage says whether a request that changes state comes from a
// page of the server's own origin.
func sameOriginPage(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o, err := url.Parse(r.Header.Get("Origin"))
	return err == nil && o.Host != "" && strings.EqualFold(o.Host, r.Host)
}

// ListenURL returns the http URL of a listener's address for people to
// open: a wildcard address becomes 127.0.0.1.
func ListenURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
