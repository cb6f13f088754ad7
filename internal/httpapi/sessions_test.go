package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/cove-sandbox/cove"
)

// fakeSessions knows the session cookie "good", which acts as the key
// "ui".
type fakeSessions struct{}

func (fakeSessions) SessionKey(r *http.Request) (*cove.Key, bool, error) {
	c, err := r.Cookie("session")
	if err != nil {
		return nil, false, nil
	}
	if c.Value != "good" {
		return nil, true, cove.Errorf(cove.CodeUnauthorized, "your session has ended")
	}
	return &cove.Key{ID: "ui"}, true, nil
}

// TestSessionCookie checks that a session cookie authenticates requests
// of the server's own pages only, and that bearer keys work as before.
func TestSessionCookie(t *testing.T) {
	cases := []struct {
		name   string
		method string
		key    string
		header []string
		status int
		who    string
	}{
		{"same origin", "GET", "", []string{"Cookie", "session=good", "Sec-Fetch-Site", "same-origin", "Origin", "http://example.com"}, 200, "ui"},
		{"same origin post", "POST", "", []string{"Cookie", "session=good", "Sec-Fetch-Site", "same-origin"}, 200, "ui"},
		{"origin header only", "POST", "", []string{"Cookie", "session=good", "Origin", "http://example.com"}, 200, "ui"},
		{"typed in the address bar", "GET", "", []string{"Cookie", "session=good", "Sec-Fetch-Site", "none"}, 200, "ui"},
		{"old browser read", "GET", "", []string{"Cookie", "session=good"}, 200, "ui"},
		{"bearer wins over cookie", "GET", "user", []string{"Cookie", "session=bad", "Sec-Fetch-Site", "cross-site"}, 200, "user"},
		{"cross site", "GET", "", []string{"Cookie", "session=good", "Sec-Fetch-Site", "cross-site"}, 403, ""},
		{"same site other port", "POST", "", []string{"Cookie", "session=good", "Sec-Fetch-Site", "same-site", "Origin", "http://example.com:8080"}, 403, ""},
		{"other origin", "POST", "", []string{"Cookie", "session=good", "Origin", "http://evil.example"}, 403, ""},
		{"no origin write", "POST", "", []string{"Cookie", "session=good"}, 403, ""},
		{"none write", "POST", "", []string{"Cookie", "session=good", "Sec-Fetch-Site", "none"}, 403, ""},
		{"ended session", "GET", "", []string{"Cookie", "session=bad", "Sec-Fetch-Site", "same-origin"}, 401, ""},
		{"no cookie", "GET", "", []string{"Sec-Fetch-Site", "same-origin"}, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := "/v1/whoami"
			body := ""
			if c.method == "POST" {
				target, body = "/v1/sandboxes", "{}"
			}
			w := serve(t, &fakeService{}, Options{Sessions: fakeSessions{}}, c.method, "http://example.com"+target, c.key, body, c.header...)
			if w.Code != c.status && !(c.status == 200 && w.Code == 201) {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, c.status)
			}
			if c.status >= 400 {
				code, msg := errorOf(t, w)
				// A refused page of another origin is forbidden; a
				// missing or ended session is unauthorized.
				want := cove.CodeUnauthorized
				if c.status == http.StatusForbidden {
					want = cove.CodeForbidden
				}
				if code != string(want) || msg == "" {
					t.Fatalf("got error %s %q, want %s", code, msg, want)
				}
				return
			}
			if c.method == "GET" {
				var k struct{ ID string }
				json.Unmarshal(w.Body.Bytes(), &k)
				if k.ID != c.who {
					t.Fatalf("acted as %q, want %q", k.ID, c.who)
				}
			}
		})
	}
	t.Run("websocket needs an origin", func(t *testing.T) {
		w := serve(t, &fakeService{}, Options{Sessions: fakeSessions{}}, "GET", "http://example.com/v1/sandboxes/x/pty", "", "",
			"Cookie", "session=good", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-Fetch-Site", "none")
		if w.Code != http.StatusForbidden {
			t.Fatalf("got %d %s, want 403", w.Code, w.Body)
		}
	})
	t.Run("without sessions the cookie is ignored", func(t *testing.T) {
		w := serve(t, &fakeService{}, Options{}, "GET", "/v1/whoami", "", "", "Cookie", "session=good", "Sec-Fetch-Site", "same-origin")
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", w.Code)
		}
	})
}
