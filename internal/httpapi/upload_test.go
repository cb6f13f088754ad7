package httpapi

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
)

// TestUploadMultipartParts checks how parts become files: their mode
// header, and errors of the parts themselves named as such rather than
// as a failure of the service to read them.
func TestUploadMultipartParts(t *testing.T) {
	body := func(parts ...[3]string) (string, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for _, p := range parts {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="f"; filename="`+p[0]+`"`)
			if p[1] != "" {
				h.Set("X-Cove-Mode", p[1])
			}
			w, _ := mw.CreatePart(h)
			w.Write([]byte(p[2]))
		}
		mw.Close()
		return b.String(), mw.FormDataContentType()
	}
	b, ct := body([3]string{"a.sh", "0755", "#!/bin/sh"}, [3]string{"d/b.txt", "", "b"})
	w := serve(t, &fakeService{}, Options{}, "POST", "/v1/sandboxes/sb1/files?path=up", "user", b, "Content-Type", ct)
	var res struct {
		Files []struct {
			Path, Mode string
			Size       int64
		}
	}
	json.Unmarshal(w.Body.Bytes(), &res)
	if w.Code != 201 || len(res.Files) != 2 || res.Files[0].Path != "up/a.sh" || res.Files[0].Mode != "0755" || res.Files[0].Size != 9 || res.Files[1].Mode != "0000" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for _, c := range []struct {
		name, query string
		parts       [][3]string
		msg         string
	}{
		{"bad mode", "", [][3]string{{"a.sh", "0755", "x"}, {"b.sh", "rwx", "y"}}, "part 2 of the upload (b.sh): X-Cove-Mode"},
		{"out of the directory", "?path=up", [][3]string{{"a", "", "x"}, {"../b", "", "y"}}, `part 2 of the upload goes to "../b", which is not inside the directory path="up"`},
		{"absolute under a directory", "?path=up", [][3]string{{"/workspace/b", "", "y"}}, "part 1 of the upload goes to \"/workspace/b\", which is not inside"},
		{"no file", "", nil, "the multipart body holds no file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, ct := body(c.parts...)
			w := serve(t, &fakeService{}, Options{}, "POST", "/v1/sandboxes/sb1/files"+c.query, "user", b, "Content-Type", ct)
			code, msg := errorOf(t, w)
			if w.Code != 400 || code != "invalid" || !strings.HasPrefix(msg, c.msg) {
				t.Fatalf("%d %s %q, want 400 invalid %q", w.Code, code, msg, c.msg)
			}
		})
	}
	// A body cut in the middle of a part: the error names that part.
	b, ct = body([3]string{"a", "", "x"}, [3]string{"dir/b.txt", "", "y"}, [3]string{"c", "", "z"})
	cut := b[:strings.Index(b, "\r\nz")+3]
	w = serve(t, &fakeService{}, Options{}, "POST", "/v1/sandboxes/sb1/files", "user", cut, "Content-Type", ct)
	if code, msg := errorOf(t, w); w.Code != 400 || code != "invalid" || !strings.HasPrefix(msg, "part 3 of the upload (c) cannot be read to its end: ") {
		t.Fatalf("cut body: %d %s %q", w.Code, code, msg)
	}
	cut = b[:strings.Index(b, "\r\ny")+3]
	w = serve(t, &fakeService{}, Options{}, "POST", "/v1/sandboxes/sb1/files", "user", cut, "Content-Type", ct)
	if code, msg := errorOf(t, w); w.Code != 400 || code != "invalid" || !strings.HasPrefix(msg, "part 2 of the upload (dir/b.txt) cannot be read to its end: ") {
		t.Fatalf("cut body: %d %s %q", w.Code, code, msg)
	}
}

// TestUploadMultipartTransferEncoding checks that a part in a transfer
// encoding cove does not decode is refused, by its name, rather than
// written encoded.
func TestUploadMultipartTransferEncoding(t *testing.T) {
	for _, c := range []struct {
		cte  string
		fail bool
	}{{"base64", true}, {"Quoted-Printable", true}, {"binary", false}, {"8bit", false}, {"", false}} {
		t.Run(c.cte, func(t *testing.T) {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			for i, name := range []string{"a.txt", "b.bin"} {
				h := textproto.MIMEHeader{}
				h.Set("Content-Disposition", `form-data; name="f"; filename="`+name+`"`)
				if i == 1 && c.cte != "" {
					h.Set("Content-Transfer-Encoding", c.cte)
				}
				w, _ := mw.CreatePart(h)
				w.Write([]byte("aGVsbG8="))
			}
			mw.Close()
			f := &fakeService{}
			w := serve(t, f, Options{}, "POST", "/v1/sandboxes/sb1/files", "user", b.String(), "Content-Type", mw.FormDataContentType())
			if !c.fail {
				if w.Code != 201 {
					t.Fatalf("%d %s", w.Code, w.Body)
				}
				return
			}
			code, msg := errorOf(t, w)
			want := "part 2 of the upload (b.bin) has Content-Transfer-Encoding " + strconv.Quote(strings.ToLower(c.cte))
			if w.Code != 400 || code != "invalid" || !strings.HasPrefix(msg, want) {
				t.Fatalf("%d %s %q, want 400 invalid %q", w.Code, code, msg, want)
			}
		})
	}
}
