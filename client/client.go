package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// Client is a cove server's API. It is safe for concurrent use.
type Client struct {
	base      string // the server's URL without a trailing slash
	key       string
	http      *http.Client
	userAgent string
}

var _ cove.Service = (*Client)(nil)

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc. Give it no
// Timeout: streams and downloads last as long as they need, and contexts
// bound each call instead.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http = hc }
}

// WithUserAgent sets the User-Agent of the client's requests.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client of the cove server at baseURL (such as
// "http://127.0.0.1:7070", or with the path under which a proxy serves
// it) that authenticates with apiKey. A trailing slash or /v1 is dropped:
// the client adds /v1 to the paths of the API itself.
// Errors: invalid (a malformed URL).
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, cove.Errorf(cove.CodeInvalid, "invalid server URL %q: use http://host:port or https://host", baseURL)
	}
	p := strings.TrimRight(u.EscapedPath(), "/")
	p = strings.TrimRight(strings.TrimSuffix(p, "/v1"), "/")
	if u.Path, err = url.PathUnescape(p); err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "invalid server URL %q: use http://host:port or https://host", baseURL)
	}
	u.RawPath = p
	c := &Client{base: u.String(), key: strings.TrimSpace(apiKey), userAgent: "cove-go/" + cove.Version}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: newTransport()}
	}
	return c, nil
}

// DefaultURL is where cove serve listens unless told otherwise.
const DefaultURL = "http://127.0.0.1:7070"

// FromEnv returns a client of the server that the environment names, as
// the cove CLI reads it: COVE_URL (DefaultURL when unset) and
// COVE_API_KEY. Errors: invalid (a malformed COVE_URL).
func FromEnv(opts ...Option) (*Client, error) {
	u := strings.TrimSpace(os.Getenv("COVE_URL"))
	if u == "" {
		u = DefaultURL
	}
	c, err := New(u, os.Getenv("COVE_API_KEY"), opts...)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "COVE_URL: %s", cove.ErrorMessage(err))
	}
	return c, nil
}

// maxIdlePerServer is how many idle connections the client keeps to its
// server. Go's default is 2: a program running more requests at once than
// that would open a new connection for most of them, and leave as many
// behind in TIME_WAIT.
const maxIdlePerServer = 64

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = maxIdlePerServer
	return t
}

// Health checks that the server answers. Errors: unavailable.
func (c *Client) Health(ctx context.Context) error {
	var h wire.Health
	return c.call(ctx, http.MethodGet, "/healthz", nil, nil, &h)
}

// request builds a request of the API; p is an escaped path under the
// server's URL.
func (c *Client) request(ctx context.Context, method, p string, q url.Values, body io.Reader) (*http.Request, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	u := c.base + p
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "building the request: %w", err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// send sends req and returns its answer when it is a success; an error
// answer becomes its *cove.Error.
func (c *Client) send(req *http.Request, accept ...int) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if cerr := req.Context().Err(); cerr != nil {
			return nil, cerr
		}
		return nil, &cove.Error{Code: cove.CodeUnavailable, Message: "cannot reach cove at " + c.base, Err: err}
	}
	if resp.StatusCode >= 300 && !slices.Contains(accept, resp.StatusCode) {
		defer resp.Body.Close()
		return nil, c.errorFrom(resp)
	}
	return resp, nil
}

// call sends a JSON request (in may be nil) and decodes a JSON answer
// into out (which may be nil).
func (c *Client) call(ctx context.Context, method, p string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return cove.Errorf(cove.CodeInvalid, "encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.request(ctx, method, p, q, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer closeBody(resp)
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return &cove.Error{Code: cove.CodeUnavailable, Message: fmt.Sprintf("reading the answer of %s %s", method, p), Err: err}
	}
	return nil
}

// closeBody reads what is left of a small answer, so that the connection
// can be reused, and closes it.
func closeBody(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// errorFrom turns an error answer into a *cove.Error: the API's code and
// message, or for an answer that is not the API's (a proxy's), a code from
// the status. A cove server answers every path under /v1, even one it
// does not know, with its JSON error; a 404 of another shape means that
// the URL is not a cove server's, which is unavailable, not not_found.
// And as the client builds only paths of the API's routes, with every id
// given, a cove server's "no such route" means the same: the server's
// URL is not that of the API (a proxy's prefix missing or extra).
func (c *Client) errorFrom(resp *http.Response) error {
	err := c.apiErrorFrom(resp)
	if err.Code == cove.CodeQuotaExceeded && err.Err == nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok {
			err.Err = retryAfterError(d)
			err.RetryAfter = d
		}
	}
	return err
}

// apiErrorFrom is errorFrom but for Retry-After.
func (c *Client) apiErrorFrom(resp *http.Response) *cove.Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body wire.ErrorBody
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e := body.Error.Err()
		if e.Code == cove.CodeNotFound && resp.Header.Get(wire.HeaderNoRoute) != "" {
			return &cove.Error{Code: cove.CodeUnavailable, Message: fmt.Sprintf("%s does not lead to the cove API: the cove server there answers %q; check the server's URL (or update that server)", c.base, e.Message)}
		}
		return e
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusNotFound && resp.Request != nil && resp.Request.Method != http.MethodHead {
		base := *resp.Request.URL
		base.Path, base.RawPath, base.RawQuery, base.Fragment = "", "", "", ""
		return &cove.Error{Code: cove.CodeUnavailable, Message: fmt.Sprintf("the server at %s does not answer as a cove server (HTTP 404 for %s: %s): check the server's URL", base.String(), resp.Request.URL.Path, msg)}
	}
	return &cove.Error{Code: wire.CodeForStatus(resp.StatusCode), Message: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, msg)}
}

// retryAfterError is the cause of a quota_exceeded error whose answer
// said when to try again: its Retry-After.
type retryAfterError time.Duration

func (e retryAfterError) Error() string { return "retry after " + time.Duration(e).String() }

// RetryAfter returns how long the server asked to wait before sending a
// request again that failed with err, a quota_exceeded error (the
// answer's Retry-After header), and whether it asked. A quota that
// waiting does not free (sandboxes or memory, freed by deleting a
// sandbox) comes without one.
func RetryAfter(err error) (time.Duration, bool) {
	var ra retryAfterError
	if errors.As(err, &ra) {
		return time.Duration(ra), true
	}
	return 0, false
}

// parseRetryAfter reads a Retry-After header: seconds (a fraction too),
// or an HTTP date.
func parseRetryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || secs > 1e9 || math.IsNaN(secs) {
			return 0, false
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// idNames names the ids that follow these segments in the API's paths.
var idNames = map[string]string{
	"sandboxes":  "sandbox",
	"keys":       "key",
	"executions": "execution",
	"contexts":   "context",
	"processes":  "process",
}

// checkPath refuses an API path built with an empty id, or a process id
// that is not positive, before it is sent: the server would take the
// path for another route or none, and answer about that. It is the one
// place that checks the ids of every method; the segments after files/
// are a workspace path, which may be empty (the workspace).
func checkPath(p string) error {
	segs := strings.Split(strings.TrimPrefix(p, "/v1/"), "/")
	for i := 0; i+1 < len(segs) && segs[i] != "files"; i++ {
		name, ok := idNames[segs[i]]
		if !ok {
			continue
		}
		id := segs[i+1]
		if id == "" {
			return cove.Errorf(cove.CodeInvalid, "the %s id is empty", name)
		}
		if name == "process" {
			if pid, err := strconv.Atoi(id); err != nil || pid <= 0 {
				return cove.Errorf(cove.CodeInvalid, "the process id %s is not a positive number", id)
			}
		}
		i++
	}
	return nil
}

// sandboxPath returns the escaped path of a sandbox's route.
func sandboxPath(id string, rest string) string {
	return "/v1/sandboxes/" + url.PathEscape(id) + rest
}

// escapeFilePath escapes a workspace path for the files routes: segment
// by segment, or, when that would not survive path cleaning (a leading or
// doubled slash, a dot segment), as one segment with escaped slashes.
func escapeFilePath(p string) string {
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			e := url.PathEscape(p)
			if e == "." || e == ".." {
				e = strings.ReplaceAll(e, ".", "%2E")
			}
			return e
		}
	}
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// opaqueReader hides the Close method of a caller's reader from
// net/http, which would otherwise close it.
type opaqueReader struct{ io.Reader }

// requestBody returns r as a request body that net/http will not close,
// keeping the types whose length net/http can tell.
func requestBody(r io.Reader) io.Reader {
	if f, ok := r.(*os.File); ok {
		if n, ok := remaining(f); ok {
			return sizedReader{f, n}
		}
	}
	switch r.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
		return r
	case nil:
		return http.NoBody
	}
	return opaqueReader{r}
}

// sizedReader is a request body whose length is known (what is left of a
// regular file): sent with its Content-Length, and for a large one after
// the server's 100 Continue, so that a server that refuses it (too
// large) says so before the body is sent rather than after.
type sizedReader struct {
	io.Reader
	n int64
}

// largeBody is the size from which a request body waits for the server's
// 100 Continue.
const largeBody = 1 << 20

// remaining is what is left to read of f, when it is a regular file.
func remaining(f *os.File) (int64, bool) {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil || pos > fi.Size() {
		return 0, false
	}
	return fi.Size() - pos, true
}

// sized gives req, whose body is body, the length of a sizedReader.
func sized(req *http.Request, body io.Reader) {
	if s, ok := body.(sizedReader); ok {
		req.ContentLength = s.n
		if s.n == 0 {
			req.Body = http.NoBody
		}
		if s.n >= largeBody {
			req.Header.Set("Expect", "100-continue")
		}
	}
}

// ErrStreamClosed is what a stream's Next returns after its Close.
var ErrStreamClosed = errors.New("client: stream closed")

// IsUnreachable reports whether err is a failure to connect to the server
// at all (connection refused, no route, an unknown host), as opposed to an
// answer from it or a connection that failed once made (TLS, a reset):
// the server is not running there, or the address is wrong.
func IsUnreachable(err error) bool {
	var oe *net.OpError
	var de *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.As(err, &de) || (errors.As(err, &oe) && oe.Op == "dial")
}
