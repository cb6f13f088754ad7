package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// decodeJSON reads a JSON object from r's body into v: at most
// MaxBodyBytes (413 beyond), no Content-Encoding (415), no unknown fields,
// nothing after the object. An empty body is taken as {}: routes whose
// fields are all optional accept it, and the others say which field is
// required. Errors are invalid, with a message that says what is wrong
// and where.
func (s *server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := refuseEncoding(r); err != nil {
		return err
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		return tooLarge("the request body", s.opts.MaxBodyBytes)
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(bodyReadTimeout)) == nil {
		defer rc.SetReadDeadline(time.Time{})
	}
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	err := decodeJSONFrom(body, v)
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errNotJSON):
		if ct := r.Header.Get("Content-Type"); ct != "" && !isJSONType(ct) {
			return statusError(http.StatusUnsupportedMediaType, cove.Errorf(cove.CodeInvalid,
				"the body must be JSON (Content-Type: application/json), not %s", cove.Excerpt(ct, 64)))
		}
		return cove.Errorf(cove.CodeInvalid, "the body must be JSON (Content-Type: application/json): it is not")
	case errors.As(err, &mbe):
		return tooLarge("the request body", s.opts.MaxBodyBytes)
	case isTimeout(err):
		return statusError(http.StatusRequestTimeout, cove.Errorf(cove.CodeInvalid, "timed out reading the request body"))
	case err != nil:
		return err
	}
	// Read to the end, so that the server notices when the client goes
	// away while a long request (an execution) runs.
	io.Copy(io.Discard, body)
	return nil
}

// errNotJSON is the error of a body that is not JSON at all (form data,
// say), not even malformed JSON.
var errNotJSON = cove.Errorf(cove.CodeInvalid, "the body must be JSON")

// decodeJSONFrom decodes one JSON object from rd into v, strictly.
// Errors: errNotJSON when the body does not begin as JSON does.
func decodeJSONFrom(rd io.Reader, v any) error {
	t := reflect.TypeOf(v)
	first := &firstByteReader{r: rd}
	dec := json.NewDecoder(first)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) && !strings.ContainsRune(`{["-0123456789tfn`, rune(first.b)) {
			return errNotJSON
		}
		if errors.Is(err, io.EOF) {
			// An empty body: as {}, so that a type that checks its
			// required fields as it decodes does.
			if err := json.Unmarshal([]byte("{}"), v); err != nil {
				return jsonError(t, err)
			}
			return nil
		}
		return jsonError(t, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(t, err)
		}
		return cove.Errorf(cove.CodeInvalid, "invalid JSON body: unexpected data after the object")
	}
	return nil
}

// firstByteReader notes the first byte of its reader's data that is not
// JSON white space.
type firstByteReader struct {
	r io.Reader
	b byte
}

func (f *firstByteReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.b == 0 {
		for _, c := range p[:n] {
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				f.b = c
				break
			}
		}
	}
	return n, err
}

// isJSONType says whether a Content-Type is JSON's.
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// jsonError explains an error of decoding JSON into a value of type t
// as an invalid error; size and time limits pass through.
func jsonError(t reflect.Type, err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
		ce  *cove.Error
	)
	switch {
	case errors.As(err, &mbe), isTimeout(err):
		return err
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &syn):
		return cove.Errorf(cove.CodeInvalid, "invalid JSON body at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		if rule, ok := wire.Rule(typ.Type); ok {
			// A value that a wire type decodes itself (a duration, say)
			// and refused: its Value is the value as sent.
			return cove.Errorf(cove.CodeInvalid, "%s: %s is not %s", jsonField(t, typ.Field), typ.Value, rule)
		}
		if typ.Field == "" {
			return cove.Errorf(cove.CodeInvalid, "invalid JSON body: expected an object, got %s", typ.Value)
		}
		return cove.Errorf(cove.CodeInvalid, "invalid JSON body: field %q must be %s, not %s", jsonField(t, typ.Field), jsonType(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return cove.Errorf(cove.CodeInvalid, "invalid JSON body: it ends in the middle of a value")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		if names := topFields(t); names != nil {
			return cove.Errorf(cove.CodeInvalid, "invalid JSON body: unknown field %s: this request takes %s", f, strings.Join(names, ", "))
		}
		return cove.Errorf(cove.CodeInvalid, "invalid JSON body: unknown field %s", f)
	}
	return cove.Errorf(cove.CodeInvalid, "invalid JSON body: %s", strings.TrimPrefix(msg, "json: "))
}

// topFields lists the JSON fields of struct type t, those of its embedded
// structs included, for a message about an unknown field. It returns nil
// when a field is itself an object of named fields: the unknown field may
// be one of that object's, which the list would not name.
func topFields(t reflect.Type) []string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		ft := sf.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array {
			ft = ft.Elem()
		}
		switch {
		case tag == "-" || !sf.IsExported():
			continue
		case sf.Anonymous && tag == "":
			inner := topFields(sf.Type)
			if inner == nil {
				return nil
			}
			names = append(names, inner...)
			continue
		case ft.Kind() == reflect.Struct && ft.NumField() > 0 && !ft.Implements(unmarshalerType) && !reflect.PointerTo(ft).Implements(unmarshalerType):
			return nil
		}
		if tag == "" {
			tag = sf.Name
		}
		names = append(names, tag)
	}
	return names
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// jsonField returns the path of a field in a JSON error about a value of
// type t as the client wrote it: encoding/json puts the Go names of the
// structs embedded on the way in it (CreateSandbox's Limits), which the
// client never wrote, so the path is followed through t to leave them out.
func jsonField(t reflect.Type, path string) string {
	var out []string
	for _, p := range strings.Split(path, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			t = nil
			out = append(out, p)
			continue
		}
		f, embedded := structField(t, p)
		if f == nil {
			t = nil
		} else {
			t = f.Type
		}
		if !embedded {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// structField returns the field of struct type t that a part of a JSON
// error's path names: an embedded struct by its Go name, or a field by
// its JSON name. It returns nil when t has no such field.
func structField(t reflect.Type, name string) (f *reflect.StructField, embedded bool) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		switch {
		case sf.Anonymous && tag == "" && sf.Name == name:
			return &sf, true
		case tag == name, tag == "" && sf.Name == name:
			return &sf, false
		}
	}
	return nil, false
}

// jsonType names a Go kind as JSON people know it.
func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case kind == "map", kind == "struct", kind == "ptr":
		return "an object"
	case kind == "slice", kind == "array":
		return "an array"
	}
	return "a " + kind
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// refuseEncoding refuses a compressed request body: its decompressed size
// would be unbounded, and nothing in the API needs it (a gzipped tar is
// sent as Content-Type application/gzip instead).
func refuseEncoding(r *http.Request) error {
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return statusError(http.StatusUnsupportedMediaType, cove.Errorf(cove.CodeInvalid,
			"Content-Encoding %q is not accepted: send the body uncompressed", ce))
	}
	return nil
}

// queryBool reads a boolean query parameter (absent is false).
func queryBool(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, cove.Errorf(cove.CodeInvalid, "invalid %s=%q: use true or false", name, cove.Excerpt(v, 64))
	}
	return b, nil
}

// pathPID reads the {pid} of a route.
func pathPID(r *http.Request) (int, error) {
	v := r.PathValue("pid")
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, cove.Errorf(cove.CodeInvalid, "invalid process id %q: use the pid that starting the process returned", cove.Excerpt(v, 64))
	}
	return n, nil
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// deadlineWriter extends the connection's write deadline before each
// write, so that a client that stops reading is dropped after the stall
// timeout while a slow but steady one is not. Call reset when done: the
// connection may serve further requests.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (s *server) newDeadlineWriter(w http.ResponseWriter) *deadlineWriter {
	return &deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: s.opts.StallTimeout}
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.w.Write(p)
}

func (d *deadlineWriter) reset() { d.rc.SetWriteDeadline(time.Time{}) }

// invalid returns an invalid error with a formatted message.
func invalid(format string, args ...any) error {
	return cove.Errorf(cove.CodeInvalid, format, args...)
}
