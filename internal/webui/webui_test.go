package webui

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/webui/bundle"
)

// keys accepts the secrets "admin-secret" and "user-secret".
type keys struct{}

func (keys) Authenticate(ctx context.Context, secret string) (*cove.Key, error) {
	switch secret {
	case "admin-secret":
		return &cove.Key{ID: "admin", Admin: true}, nil
	case "user-secret":
		return &cove.Key{ID: "user"}, nil
	}
	return nil, cove.Errorf(cove.CodeUnauthorized, "unknown API key")
}

func newUI(t *testing.T, publicURL string) *UI {
	t.Helper()
	u, err := New(Options{Auth: keys{}, LoginToken: "tok", LoginSecret: "admin-secret", ListenAddr: "127.0.0.1:7070", PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// apiStub stands for the API: it answers who the session is.
func apiStub(u *UI) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok, err := u.SessionKey(r)
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusUnauthorized)
		case !ok:
			io.WriteString(w, "api:anonymous")
		default:
			io.WriteString(w, "api:"+k.ID)
		}
	})
}

func do(h http.Handler, method, target, host string, header ...string) *httptest.ResponseRecorder {
	return doBody(h, method, target, host, "", header...)
}

func doBody(h http.Handler, method, target, host, body string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHostPolicy(t *testing.T) {
	cases := []struct {
		listen, public string
		host           string
		ok             bool
	}{
		{"127.0.0.1:7070", "", "127.0.0.1:7070", true},
		{"127.0.0.1:7070", "", "localhost:7070", true},
		{"127.0.0.1:7070", "", "LOCALHOST:7070", true},
		{"127.0.0.1:7070", "", "[::1]:7070", true},
		{"127.0.0.1:7070", "", "localhost:7071", false},
		{"127.0.0.1:7070", "", "localhost", false},
		{"127.0.0.1:7070", "", "evil.example:7070", false},
		{"127.0.0.1:7070", "", "127.0.0.1.nip.io:7070", false},
		{"127.0.0.1:7070", "", "10.0.0.5:7070", false},
		{"127.0.0.1:7070", "", "", false},
		{"[::]:7070", "", "10.0.0.5:7070", true},
		{"0.0.0.0:7070", "", "[fe80::1]:7070", true},
		{"0.0.0.0:7070", "", "myhost:7070", false},
		{"myhost:7070", "", "myhost:7070", true},
		{"0.0.0.0:7070", "https://cove.example.com", "cove.example.com", true},
		{"0.0.0.0:7070", "https://cove.example.com", "cove.example.com:443", true},
		{"0.0.0.0:7070", "https://cove.example.com", "cove.example.com:7070", false},
		{"0.0.0.0:7070", "http://cove.example.com:8080/", "cove.example.com:8080", true},
		{"0.0.0.0:7070", "http://cove.example.com:8080/", "evil.example:8080", false},
	}
	for _, c := range cases {
		p, err := newHostPolicy(c.listen, c.public)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.allowed(c.host); got != c.ok {
			t.Errorf("listen %s public %q: host %q allowed = %v, want %v", c.listen, c.public, c.host, got, c.ok)
		}
	}
	for _, bad := range []string{"ftp://x", "cove.example.com", "http://"} {
		if _, err := newHostPolicy("127.0.0.1:7070", bad); cove.ErrorCode(err) != cove.CodeInvalid {
			t.Errorf("public URL %q: got %v, want invalid", bad, err)
		}
	}
}

// TestGuard checks that the UI and cookie requests answer only the
// server's own host, while requests with a key of their own pass.
func TestGuard(t *testing.T) {
	u := newUI(t, "")
	h := u.Wrap(apiStub(u))
	cases := []struct {
		name, path, host string
		header           []string
		status           int
	}{
		{"page", "/", "127.0.0.1:7070", nil, 200},
		{"page on a rebinding name", "/", "evil.example:7070", nil, 421},
		{"api on a rebinding name", "/v1/whoami", "evil.example:7070", nil, 421},
		{"api with a key on another name", "/v1/whoami", "devbox:7070", []string{"Authorization", "Bearer x"}, 200},
		{"login with a key header on another name", "/login?token=tok", "evil.example:7070", []string{"Authorization", "Bearer x"}, 421},
		{"api on localhost", "/v1/whoami", "localhost:7070", nil, 200},
		{"health check by any name", "/healthz", "cove.internal:7070", nil, 200},
		{"openapi on a rebinding name", "/v1/openapi.json", "evil.example:7070", nil, 421},
	}
	for _, c := range cases {
		w := do(h, "GET", c.path, c.host, c.header...)
		if w.Code != c.status {
			t.Errorf("%s: got %d %s, want %d", c.name, w.Code, w.Body, c.status)
		}
		if c.status == 421 && !strings.Contains(w.Body.String(), `"code":"unauthorized"`) {
			t.Errorf("%s: the refusal is not a JSON error: %s", c.name, w.Body)
		}
	}
}

func TestLogin(t *testing.T) {
	u := newUI(t, "")
	h := u.Wrap(apiStub(u))
	host := "127.0.0.1:7070"

	w := do(h, "GET", "/login?token=wrong", host)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/#login-failed" || len(w.Result().Cookies()) != 0 {
		t.Fatalf("a wrong token: got %d %v %v", w.Code, w.Header(), w.Result().Cookies())
	}
	w = do(h, "GET", "/login?token=tok", host)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("the login link: got %d %v", w.Code, w.Header())
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies: %v", cs)
	}
	c := cs[0]
	if c.Name != "cove_session_7070" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Value == "" || c.Path != "/" {
		t.Fatalf("cookie %+v", c)
	}
	if w.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Fatal("the login answer may leak its URL in a Referer")
	}
	cookie := c.Name + "=" + c.Value
	if w := do(h, "GET", "/v1/whoami", host, "Cookie", cookie); w.Body.String() != "api:admin" {
		t.Fatalf("session acts as %s", w.Body)
	}
	if w := do(h, "GET", "/v1/whoami", host, "Cookie", c.Name+"=forged"); w.Code != 401 || !strings.Contains(w.Body.String(), "session has ended") {
		t.Fatalf("a forged cookie: %d %s", w.Code, w.Body)
	}

	// The login form, with an API key or the token, from the page only.
	w = doBody(h, "POST", "/login", host, `{"token":"user-secret"}`, "Sec-Fetch-Site", "same-origin")
	if w.Code != http.StatusNoContent || len(w.Result().Cookies()) != 1 {
		t.Fatalf("login with a key: %d %s", w.Code, w.Body)
	}
	uc := w.Result().Cookies()[0]
	if w := do(h, "GET", "/v1/whoami", host, "Cookie", uc.Name+"="+uc.Value); w.Body.String() != "api:user" {
		t.Fatalf("key session acts as %s", w.Body)
	}
	w = doBody(h, "POST", "/login", host, `{"token":"http://127.0.0.1:7070/login?token=tok"}`, "Origin", "http://127.0.0.1:7070")
	if w.Code != http.StatusNoContent {
		t.Fatalf("login with the pasted link: %d %s", w.Code, w.Body)
	}
	for _, hdr := range [][]string{{"Sec-Fetch-Site", "same-site"}, {"Origin", "http://localhost:8080"}, nil} {
		w = doBody(h, "POST", "/login", host, `{"token":"tok"}`, hdr...)
		if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
			t.Fatalf("login from %v: %d %s", hdr, w.Code, w.Body)
		}
	}
	w = doBody(h, "POST", "/login", host, `{"token":"nope"}`, "Sec-Fetch-Site", "same-origin")
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "neither") {
		t.Fatalf("a wrong token in the form: %d %s", w.Code, w.Body)
	}

	// Logging out ends the session.
	if w := do(h, "POST", "/logout", host, "Cookie", cookie, "Sec-Fetch-Site", "cross-site"); w.Code != http.StatusForbidden {
		t.Fatalf("cross-site logout: %d", w.Code)
	}
	if w := do(h, "POST", "/logout", host, "Cookie", cookie, "Sec-Fetch-Site", "same-origin"); w.Code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	if w := do(h, "GET", "/v1/whoami", host, "Cookie", cookie); w.Code != 401 {
		t.Fatalf("after logout: %d %s", w.Code, w.Body)
	}
}

func TestSecureCookieBehindHTTPS(t *testing.T) {
	u := newUI(t, "https://cove.example.com")
	w := do(u.Wrap(apiStub(u)), "GET", "/login?token=tok", "cove.example.com")
	if cs := w.Result().Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Fatalf("cookies %v", cs)
	}
}

func TestSessionExpiry(t *testing.T) {
	s := newSessions(0)
	id := s.open("admin-secret")
	if s.get(id) != "" {
		t.Fatal("a session outlived its time to live")
	}
	s = newSessions(1 << 40)
	id = s.open("admin-secret")
	if s.get(id) != "admin-secret" {
		t.Fatal("a live session was lost")
	}
	for i := 0; i < maxSessions; i++ {
		s.open("x")
	}
	if len(s.m) > maxSessions {
		t.Fatalf("%d sessions kept, bound %d", len(s.m), maxSessions)
	}
}

// TestStatic checks how the page and the assets are served.
func TestStatic(t *testing.T) {
	u := newUI(t, "")
	h := u.Wrap(apiStub(u))
	host := "127.0.0.1:7070"
	w := do(h, "GET", "/", host)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("index: %d %v", w.Code, w.Header())
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-eval") || strings.Contains(regexp.MustCompile(`script-src[^;]*`).FindString(csp), "unsafe-inline") {
		t.Errorf("CSP %q lets script run from strings", csp)
	}
	refs := regexp.MustCompile(`/assets/[A-Za-z0-9._-]+`).FindAllString(w.Body.String(), -1)
	if len(refs) != 2 {
		t.Fatalf("index names %v, want a script and a stylesheet", refs)
	}
	for _, ref := range refs {
		raw := do(h, "GET", ref, host)
		if raw.Code != 200 || raw.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || raw.Header().Get("Content-Encoding") != "" {
			t.Fatalf("%s: %d %v", ref, raw.Code, raw.Header())
		}
		gz := do(h, "GET", ref, host, "Accept-Encoding", "br, gzip")
		if gz.Header().Get("Content-Encoding") != "gzip" || gz.Header().Get("Vary") != "Accept-Encoding" {
			t.Fatalf("%s: not gzipped: %v", ref, gz.Header())
		}
		zr, err := gzip.NewReader(gz.Body)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if !bytes.Equal(plain, raw.Body.Bytes()) {
			t.Fatalf("%s: the gzipped copy differs from the file", ref)
		}
	}
	for _, p := range []string{"/assets/nope.js", "/assets/../index.html", "/assets/" + strings.TrimPrefix(refs[0], "/assets/") + ".gz"} {
		if w := do(h, "GET", p, host); w.Code != 404 {
			t.Errorf("%s: got %d", p, w.Code)
		}
	}
	if w := do(h, "POST", "/", host); w.Code != 405 {
		t.Errorf("POST /: got %d", w.Code)
	}
	// Other paths are the API's.
	if w := do(h, "GET", "/v1/sandboxes", host); w.Body.String() != "api:anonymous" {
		t.Errorf("/v1/sandboxes went to %q", w.Body)
	}
}

// TestBundleMatchesSources fails when web/ changed without `make ui`: the
// committed bundle records the hash of the sources it was built from.
func TestBundleMatchesSources(t *testing.T) {
	recorded, err := fs.ReadFile(dist, "dist/"+bundle.HashFile)
	if err != nil {
		t.Fatalf("the embedded bundle has no %s: run make ui", bundle.HashFile)
	}
	got, err := bundle.SourceHash("../../web", "bundle")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(recorded)) != got {
		t.Fatalf("internal/webui/dist was built from other sources than web/ holds now: run make ui and commit internal/webui/dist")
	}
}

// TestBundleRebuilds rebuilds the bundle where web/node_modules is
// installed and compares it with the committed one, byte for byte.
func TestBundleRebuilds(t *testing.T) {
	if _, err := os.Stat("../../web/node_modules"); err != nil {
		t.Skip("web/node_modules is not installed (make ui installs it)")
	}
	out := t.TempDir()
	if _, err := bundle.Build(bundle.Options{WebDir: "../../web", OutDir: out, BundleDir: "bundle"}); err != nil {
		t.Fatal(err)
	}
	var names []string
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		names = append(names, rel)
		built, _ := os.ReadFile(p)
		committed, err := fs.ReadFile(dist, "dist/"+filepath.ToSlash(rel))
		if err != nil || !bytes.Equal(built, committed) {
			t.Errorf("%s differs from the committed bundle: run make ui", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	committed, _ := fs.Glob(dist, "dist/assets/*")
	if len(committed) != len(names)-2 {
		t.Errorf("the committed bundle has %d assets, a rebuild %d: run make ui", len(committed), len(names)-2)
	}
}
