package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func filesPath(id, p string) string {
	return sandboxPath(id, "/files/"+escapeFilePath(p))
}

// WriteFile implements cove.Service (PUT /v1/sandboxes/{id}/files/{path}):
// r is streamed as the request body and is not closed.
func (c *Client) WriteFile(ctx context.Context, id, p string, r io.Reader, mode uint32) (*cove.FileInfo, error) {
	q := url.Values{}
	if mode != 0 {
		q.Set("mode", wire.Mode(mode).String())
	}
	body := requestBody(r)
	req, err := c.request(ctx, http.MethodPut, filesPath(id, p), q, body)
	if err != nil {
		return nil, err
	}
	sized(req, body)
	req.Header.Set("Content-Type", "application/octet-stream")
	return c.fileInfoAnswer(req)
}

func (c *Client) fileInfoAnswer(req *http.Request) (*cove.FileInfo, error) {
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	var w wire.FileInfo
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return nil, &cove.Error{Code: cove.CodeUnavailable, Message: "reading the answer of " + req.Method + " " + req.URL.Path, Err: err}
	}
	return w.Cove(), nil
}

// ReadFile implements cove.Service (GET .../files/{path}?raw=true): the
// returned reader streams the file from the server; close it.
func (c *Client) ReadFile(ctx context.Context, id, p string) (io.ReadCloser, *cove.FileInfo, error) {
	return c.ReadFileRange(ctx, id, p, 0, 0)
}

// ReadFileRange implements cove.Service with a Range header: the server
// answers 206 with the part, or 416 (nothing to read) for an offset at or
// past the end.
func (c *Client) ReadFileRange(ctx context.Context, id, p string, offset, length int64) (io.ReadCloser, *cove.FileInfo, error) {
	if offset < 0 || length < 0 {
		return nil, nil, cove.Errorf(cove.CodeInvalid, "a part of a file starts at a byte offset of 0 or more and has a length of 0 (to its end) or more, not %d and %d", offset, length)
	}
	req, err := c.request(ctx, http.MethodGet, filesPath(id, p), url.Values{"raw": {"true"}}, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "*/*")
	ranged := offset > 0 || length > 0
	var accept []int
	if ranged {
		last := ""
		// A part that would end past the largest byte number HTTP can
		// name is read to the end, which no file reaches.
		if length > 0 && length <= math.MaxInt64-offset {
			last = strconv.FormatInt(offset+length-1, 10)
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%s", offset, last))
		accept = append(accept, http.StatusRequestedRangeNotSatisfiable)
	}
	resp, err := c.send(req, accept...)
	if err != nil {
		return nil, nil, err
	}
	fi, err := headerFileInfo(resp, p)
	if err != nil {
		resp.Body.Close()
		return nil, nil, err
	}
	switch {
	case !ranged, resp.StatusCode == http.StatusPartialContent:
		return resp.Body, fi, nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return io.NopCloser(strings.NewReader("")), fi, nil
	}
	// A whole file (a server that does not do ranges): skip to the part.
	if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil && err != io.EOF {
		resp.Body.Close()
		return nil, nil, &cove.Error{Code: cove.CodeUnavailable, Message: "reading the file from the server", Err: err}
	}
	if length == 0 {
		return resp.Body, fi, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, length), resp.Body}, fi, nil
}

// headerFileInfo reads the FileInfo of a download from its headers.
func headerFileInfo(resp *http.Response, p string) (*cove.FileInfo, error) {
	if h := resp.Header.Get("X-Cove-File-Info"); h != "" {
		var w wire.FileInfo
		if err := json.Unmarshal([]byte(h), &w); err != nil {
			return nil, cove.Errorf(cove.CodeUnavailable, "malformed X-Cove-File-Info header from the server")
		}
		return w.Cove(), nil
	}
	// A server or proxy that dropped the header: what HTTP itself says
	// (of a part, Content-Range gives the whole file's size).
	fi := &cove.FileInfo{Path: p, Name: path.Base(p), Size: resp.ContentLength}
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		if _, total, ok := strings.Cut(cr, "/"); ok {
			if n, err := strconv.ParseInt(total, 10, 64); err == nil {
				fi.Size = n
			}
		}
	}
	if t, err := time.Parse(http.TimeFormat, resp.Header.Get("Last-Modified")); err == nil {
		fi.ModTime = t
	}
	return fi, nil
}

// StatFile implements cove.Service (GET .../files/{path}?stat=true).
func (c *Client) StatFile(ctx context.Context, id, p string) (*cove.FileInfo, error) {
	var w wire.FileInfo
	if err := c.call(ctx, http.MethodGet, filesPath(id, p), url.Values{"stat": {"true"}}, nil, &w); err != nil {
		return nil, err
	}
	return w.Cove(), nil
}

// ListFiles implements cove.Service (GET .../files/{path}?list=true).
func (c *Client) ListFiles(ctx context.Context, id, p string, recursive bool) ([]*cove.FileInfo, error) {
	q := url.Values{"list": {"true"}}
	if recursive {
		q.Set("recursive", "true")
	}
	var list wire.FileList
	if err := c.call(ctx, http.MethodGet, filesPath(id, p), q, nil, &list); err != nil {
		return nil, err
	}
	out := make([]*cove.FileInfo, 0, len(list.Entries))
	for _, w := range list.Entries {
		out = append(out, w.Cove())
	}
	return out, nil
}

// DeleteFile implements cove.Service (DELETE .../files/{path}).
func (c *Client) DeleteFile(ctx context.Context, id, p string, recursive bool) error {
	var q url.Values
	if recursive {
		q = url.Values{"recursive": {"true"}}
	}
	return c.call(ctx, http.MethodDelete, filesPath(id, p), q, nil, nil)
}

// MakeDir implements cove.Service (POST .../fs/mkdir).
func (c *Client) MakeDir(ctx context.Context, id, p string) (*cove.FileInfo, error) {
	return c.fsCall(ctx, id, "mkdir", &wire.PathRequest{Path: p})
}

// MoveFile implements cove.Service (POST .../fs/move).
func (c *Client) MoveFile(ctx context.Context, id, from, to string) (*cove.FileInfo, error) {
	return c.fsCall(ctx, id, "move", &wire.MoveRequest{From: from, To: to})
}

// ChmodFile implements cove.Service (POST .../fs/chmod).
func (c *Client) ChmodFile(ctx context.Context, id, p string, mode uint32) (*cove.FileInfo, error) {
	m := wire.Mode(mode)
	return c.fsCall(ctx, id, "chmod", &wire.ChmodRequest{Path: p, Mode: &m})
}

func (c *Client) fsCall(ctx context.Context, id, op string, in any) (*cove.FileInfo, error) {
	var w wire.FileInfo
	if err := c.call(ctx, http.MethodPost, sandboxPath(id, "/fs/"+op), nil, in, &w); err != nil {
		return nil, err
	}
	return w.Cove(), nil
}

// SearchFiles implements cove.Service (POST .../fs/search).
func (c *Client) SearchFiles(ctx context.Context, id string, req cove.SearchRequest) (*cove.SearchResult, error) {
	var res wire.SearchResult
	if err := c.call(ctx, http.MethodPost, sandboxPath(id, "/fs/search"), nil, wire.SearchRequest(req), &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ReplaceInFiles implements cove.Service (POST .../fs/replace).
func (c *Client) ReplaceInFiles(ctx context.Context, id string, req cove.ReplaceRequest) ([]*cove.ReplaceResult, error) {
	var res wire.ReplaceResults
	if err := c.call(ctx, http.MethodPost, sandboxPath(id, "/fs/replace"), nil, wire.ReplaceRequest(req), &res); err != nil {
		return nil, err
	}
	return res.Results, nil
}

// DownloadArchive implements cove.Service (GET .../files/{path}?archive=):
// the returned reader streams the archive from the server; close it.
func (c *Client) DownloadArchive(ctx context.Context, id, p, format string) (io.ReadCloser, error) {
	req, err := c.request(ctx, http.MethodGet, filesPath(id, p), url.Values{"archive": {format}}, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "*/*")
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// UploadArchive implements cove.Service (POST .../files?extract=tar): r, a
// tar stream (gzipped or not), is streamed as the request body and is not
// closed.
func (c *Client) UploadArchive(ctx context.Context, id, p string, r io.Reader) error {
	q := url.Values{"extract": {"tar"}}
	if p != "" {
		q.Set("path", p)
	}
	body := requestBody(r)
	req, err := c.request(ctx, http.MethodPost, sandboxPath(id, "/files"), q, body)
	if err != nil {
		return err
	}
	sized(req, body)
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	closeBody(resp)
	return nil
}

// UploadFiles implements cove.Service (POST .../files as
// multipart/form-data): the files that next returns are streamed as the
// parts of one request, each with its path as its filename and its mode
// in X-Cove-Mode. Their readers are not closed.
func (c *Client) UploadFiles(ctx context.Context, id string, next func() (*cove.FileUpload, error)) ([]*cove.FileInfo, error) {
	first, err := next()
	if err == io.EOF {
		// Nothing to upload, which is no error in-process: the server
		// refuses a body without a part, so no upload is sent, and the
		// sandbox must exist all the same.
		if _, err := c.GetSandbox(ctx, id); err != nil {
			return nil, err
		}
		return []*cove.FileInfo{}, nil
	}
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "reading the upload: %w", err)
	}
	rest := next
	next = func() (*cove.FileUpload, error) {
		if first != nil {
			f := first
			first = nil
			return f, nil
		}
		return rest()
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	// The request is built before next is called: one that cannot be
	// sent reads nothing.
	req, err := c.request(ctx, http.MethodPost, sandboxPath(id, "/files"), nil, pr)
	if err != nil {
		return nil, err
	}
	readErr := make(chan error, 1)
	go func() {
		err := writeParts(mw, next)
		if err == nil {
			err = mw.Close()
			pw.CloseWithError(err)
			readErr <- nil
			return
		}
		pw.CloseWithError(err)
		var se *sendError
		if errors.As(err, &se) {
			// The request ended; its answer says why.
			err = nil
		}
		readErr <- err
	}()
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.send(req)
	// Stop the parts being sent, then wait until next is no longer called.
	pr.CloseWithError(errUploadEnded)
	var rerr error
	select {
	case rerr = <-readErr:
	case <-ctx.Done():
	}
	switch {
	case rerr != nil:
		if err == nil {
			closeBody(resp)
		}
		return nil, cove.Errorf(cove.CodeInvalid, "reading the upload: %w", rerr)
	case err != nil:
		return nil, err
	}
	defer closeBody(resp)
	var res wire.UploadResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, &cove.Error{Code: cove.CodeUnavailable, Message: "reading the answer of POST " + req.URL.Path, Err: err}
	}
	out := make([]*cove.FileInfo, 0, len(res.Files))
	for _, w := range res.Files {
		out = append(out, w.Cove())
	}
	return out, nil
}

// errUploadEnded stops the parts of an upload whose request has ended.
var errUploadEnded = errors.New("client: the upload's request ended")

// sendError is a failure to send a part: the request ended.
type sendError struct{ err error }

func (e *sendError) Error() string { return e.err.Error() }

// errReader notes the error of reading r, other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// writeParts writes a part for every file next returns. It returns the
// error of next or of reading a file, or a *sendError when writing
// failed.
func writeParts(mw *multipart.Writer, next func() (*cove.FileUpload, error)) error {
	for {
		f, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if f == nil {
			return errors.New("no file and no error from the upload's next")
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": f.Path}))
		h.Set("Content-Type", "application/octet-stream")
		if f.Mode != 0 {
			h.Set("X-Cove-Mode", wire.Mode(f.Mode).String())
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			return &sendError{err}
		}
		if f.Body == nil {
			continue
		}
		er := &errReader{r: f.Body}
		if _, err := io.Copy(w, er); err != nil {
			if er.err != nil {
				return fmt.Errorf("reading %s: %w", f.Path, er.err)
			}
			return &sendError{err}
		}
	}
}
