package httpapi

import (
	"net/http"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// TestForbiddenIsNot401 checks that a valid key the service refuses (a
// non-admin key managing keys) gets 403 without WWW-Authenticate, while a
// wrong or missing key still gets 401 with it.
func TestForbiddenIsNot401(t *testing.T) {
	notAdmin := cove.Errorf(cove.CodeUnauthorized, "only an admin key may manage keys")
	cases := []struct {
		name, method, target, key string
		err                       error
		status                    int
		msg                       string
	}{
		{"list keys", "GET", "/v1/keys", "user", notAdmin, 403, "only an admin key may manage keys"},
		{"create key", "POST", "/v1/keys", "user", notAdmin, 403, "only an admin key may manage keys"},
		{"revoke key", "DELETE", "/v1/keys/k1", "user", notAdmin, 403, "only an admin key may manage keys"},
		{"unknown key", "GET", "/v1/keys", "nobody", nil, 401, "unknown API key"},
		{"no key", "GET", "/v1/keys", "", nil, 401, "missing API key: send Authorization: Bearer <key>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := serve(t, &fakeService{err: c.err}, Options{Metrics: http.NotFoundHandler()}, c.method, c.target, c.key, "")
			code, msg := errorOf(t, w)
			if w.Code != c.status || code != "unauthorized" || msg != c.msg {
				t.Fatalf("%d %s %q, want %d unauthorized %q", w.Code, code, msg, c.status, c.msg)
			}
			if got := w.Header().Get("WWW-Authenticate"); (got != "") != (c.status == 401) {
				t.Fatalf("status %d with WWW-Authenticate %q", w.Code, got)
			}
		})
	}
	if code := wire.CodeForStatus(403); code != cove.CodeUnauthorized {
		t.Fatalf("CodeForStatus(403) = %s", code)
	}
}
