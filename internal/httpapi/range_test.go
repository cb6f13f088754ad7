package httpapi

import (
	"strings"
	"testing"
)

// TestFileRangeHeaders checks the answers to Range headers of a download
// of a 5-byte file: a part with 206 and Content-Range, the whole file for
// the forms cove does not serve as parts, and 416 from the end on.
func TestFileRangeHeaders(t *testing.T) {
	for _, tc := range []struct {
		rng, body, contentRange string
		status                  int
	}{
		{"", "hello", "", 200},
		{"bytes=0-", "hello", "bytes 0-4/5", 206},
		{"bytes=1-3", "ell", "bytes 1-3/5", 206},
		{"bytes=4-4", "o", "bytes 4-4/5", 206},
		{"bytes=3-100", "lo", "bytes 3-4/5", 206},
		// The largest last byte HTTP can name: to the end.
		{"bytes=0-9223372036854775807", "hello", "bytes 0-4/5", 206},
		{"bytes=1-9223372036854775807", "ello", "bytes 1-4/5", 206},
		{"bytes=-2", "hello", "", 200},
		{"bytes=0-1,3-4", "hello", "", 200},
		{"bytes=3-1", "hello", "", 200},
		{"bytes=5-", "", "bytes */5", 416},
	} {
		t.Run(tc.rng, func(t *testing.T) {
			var h []string
			if tc.rng != "" {
				h = []string{"Range", tc.rng}
			}
			w := serve(t, &fakeService{}, Options{}, "GET", "/v1/sandboxes/sb1/files/f.txt?raw=true", "user", "", h...)
			if w.Code != tc.status || w.Header().Get("Content-Range") != tc.contentRange {
				t.Fatalf("%d, Content-Range %q, body %q; want %d, %q", w.Code, w.Header().Get("Content-Range"), w.Body, tc.status, tc.contentRange)
			}
			if tc.status != 416 && w.Body.String() != tc.body {
				t.Fatalf("body %q, want %q", w.Body, tc.body)
			}
			if tc.status != 416 {
				return
			}
			if _, msg := errorOf(t, w); !strings.Contains(msg, "past the end of f.txt (5 bytes): start it at byte 4 or before, such as bytes=0-") {
				t.Fatalf("416 says %q", msg)
			}
		})
	}
}
