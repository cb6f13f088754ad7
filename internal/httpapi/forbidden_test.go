package httpapi

import (
	"net/http"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// TestForbiddenIsNot401 checks that a valid key that may not do something
// (a non-admin key managing keys or reading metrics) gets 403 forbidden
// without WWW-Authenticate, while a wrong or missing key still gets 401
// unauthorized with it.
func TestForbiddenIsNot401(t *testing.T) {
	notAdmin := cove.Errorf(cove.CodeForbidden, "only an admin key may manage keys")
	cases := []struct {
		name, method, target, key string
		err                       error
		status                    int
		code                      cove.Code
		msg                       string
	}{
		{"list keys", "GET", "/v1/keys", "user", notAdmin, 403, cove.CodeForbidden, "only an admin key may manage keys"},
		{"create key", "POST", "/v1/keys", "user", notAdmin, 403, cove.CodeForbidden, "only an admin key may manage keys"},
		{"revoke key", "DELETE", "/v1/keys/k1", "user", notAdmin, 403, cove.CodeForbidden, "only an admin key may manage keys"},
		{"metrics", "GET", "/metrics", "user", nil, 403, cove.CodeForbidden, "only an admin key may read metrics (unless the server sets metrics_public, COVE_METRICS_PUBLIC)"},
		{"unknown key", "GET", "/v1/keys", "nobody", nil, 401, cove.CodeUnauthorized, "unknown API key"},
		{"no key", "GET", "/v1/keys", "", nil, 401, cove.CodeUnauthorized, "missing API key: send Authorization: Bearer <key>"},
		{"metrics without a key", "GET", "/metrics", "", nil, 401, cove.CodeUnauthorized, "missing API key: send Authorization: Bearer <key>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := serve(t, &fakeService{err: c.err}, Options{Metrics: http.NotFoundHandler()}, c.method, c.target, c.key, "")
			code, msg := errorOf(t, w)
			if w.Code != c.status || code != string(c.code) || msg != c.msg {
				t.Fatalf("%d %s %q, want %d %s %q", w.Code, code, msg, c.status, c.code, c.msg)
			}
			if got := w.Header().Get("WWW-Authenticate"); (got != "") != (c.status == 401) {
				t.Fatalf("status %d with WWW-Authenticate %q", w.Code, got)
			}
		})
	}
	// An answer without a body (a proxy's) maps back the same way.
	if code := wire.CodeForStatus(403); code != cove.CodeForbidden {
		t.Fatalf("CodeForStatus(403) = %s", code)
	}
	if code := wire.CodeForStatus(401); code != cove.CodeUnauthorized {
		t.Fatalf("CodeForStatus(401) = %s", code)
	}
}
