package webui

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/httpapi"
	"github.com/cove-sandbox/cove/internal/logtest"
)

// TestRefusalsArePacedTogether drives a real server, the UI in front of
// the API as cove serve runs them, with 200 wrong login links, 200
// requests for a foreign host, 200 wrong login forms and 200 unknown API
// keys: one limit paces them all, so that the log gets a few lines that
// count them right, not 800.
func TestRefusalsArePacedTogether(t *testing.T) {
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	srv := httptest.NewUnstartedServer(nil)
	ui, err := New(Options{Auth: keys{}, LoginToken: "tok", LoginSecret: "admin-secret", ListenAddr: srv.Listener.Addr().String(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// Refused requests never reach the service.
	srv.Config.Handler = ui.Wrap(httpapi.New(struct{ cove.Service }{}, httpapi.Options{Auth: keys{}, Sessions: ui, Logger: log}))
	srv.Start()
	defer srv.Close()

	send := func(method, path, host, body string, header ...string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Host = host
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	own := srv.Listener.Addr().String()
	start := time.Now()
	for i := range 200 {
		if st := send("GET", fmt.Sprintf("/login?token=bad%d", i), own, ""); st != http.StatusSeeOther {
			t.Fatalf("a wrong login link: %d", st)
		}
		if st := send("GET", "/", "evil.example:80", ""); st != http.StatusMisdirectedRequest {
			t.Fatalf("a foreign host: %d", st)
		}
		if st := send("POST", "/login", own, `{"token":"nope"}`, "Sec-Fetch-Site", "same-origin"); st != http.StatusUnauthorized {
			t.Fatalf("a wrong login form: %d", st)
		}
		if st := send("GET", "/v1/whoami", own, "", "Authorization", "Bearer wrong"); st != http.StatusUnauthorized {
			t.Fatalf("an unknown key: %d", st)
		}
	}
	took := time.Since(start)

	// The refusal after a quiet second is logged after the count of
	// those left out before it.
	const summary = "refused requests not logged one by one"
	time.Sleep(1100 * time.Millisecond)
	if st := send("GET", "/v1/whoami", own, "", "Authorization", "Bearer wrong"); st != http.StatusUnauthorized {
		t.Fatalf("an unknown key: %d", st)
	}

	full := len(logs.Lines("level=WARN")) - len(logs.Lines(summary))
	leftOut := 0
	for _, line := range logs.Lines(summary) {
		var n int
		_, v, _ := strings.Cut(line, "left_out=")
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil {
			t.Fatalf("no count in %q", line)
		}
		leftOut += n
		if !strings.Contains(line, "addresses=1 ") {
			t.Errorf("every request came from one address: %s", line)
		}
	}
	// One full line a second and one summary a second while they last.
	most := 2 * (int(took/time.Second) + 2)
	if lines := len(logs.Lines("level=WARN")); full+leftOut != 801 || lines > most {
		t.Fatalf("800 refusals in %v: %d lines, %d refusals logged in full and %d counted as left out; want at most %d lines counting 800:\n%s",
			took, lines, full, leftOut, most, logs.String())
	}
	if !strings.Contains(logs.String(), `reasons="authentication failed; refused a login link with a wrong token; refused a login with a wrong token or key; refused a request for another host"`) {
		t.Errorf("the summary does not say why:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "bad1") {
		t.Errorf("a login token is in the log:\n%s", logs.String())
	}
}
