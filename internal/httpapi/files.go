package httpapi

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// headerFileInfo carries a file's wire.FileInfo as ASCII JSON on file
// downloads and HEAD answers.
const headerFileInfo = "X-Cove-File-Info"

// filePath returns the {path} of a files route; the workspace itself when
// there is none.
func filePath(r *http.Request) string {
	if p := r.PathValue("path"); p != "" {
		return p
	}
	return "."
}

// getFile answers GET .../files/{path}: by default a file's bytes or a
// directory's listing; ?stat=true its FileInfo; ?list=true (or
// ?recursive=true) a listing only; ?raw=true the bytes only; ?archive=tar
// or zip the directory packed.
func (s *server) getFile(w http.ResponseWriter, r *http.Request) error {
	ctx, id, p := r.Context(), r.PathValue("id"), filePath(r)
	stat, err := queryBool(r, "stat")
	if err != nil {
		return err
	}
	list, err := queryBool(r, "list")
	if err != nil {
		return err
	}
	recursive, err := queryBool(r, "recursive")
	if err != nil {
		return err
	}
	raw, err := queryBool(r, "raw")
	if err != nil {
		return err
	}
	// ?archive= with no format is an archive asked for wrongly, not a
	// listing: the service says which formats there are.
	switch q := r.URL.Query(); {
	case q.Has("archive"):
		return s.downloadArchive(w, r, id, p, q.Get("archive"))
	case stat:
		fi, err := s.svc.StatFile(ctx, id, p)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, wire.FileInfoFrom(fi))
		return nil
	case list || recursive:
		return s.listFiles(w, r, id, p, recursive)
	}
	part, ranged := byteRange(r)
	rc, fi, err := s.svc.ReadFileRange(ctx, id, p, part.from, part.length())
	if err != nil {
		if raw || cove.ErrorCode(err) != cove.CodeInvalid {
			return err
		}
		// Perhaps a directory: list it.
		if dfi, serr := s.svc.StatFile(ctx, id, p); serr == nil && dfi.IsDir {
			return s.listFiles(w, r, id, p, recursive)
		}
		return err
	}
	defer rc.Close()
	setFileHeaders(w.Header(), fi)
	w.Header().Set("Accept-Ranges", "bytes")
	status, n := http.StatusOK, fi.Size
	if ranged {
		if part.from >= fi.Size {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", fi.Size))
			return statusError(http.StatusRequestedRangeNotSatisfiable, rangePastEnd(fi, part.from))
		}
		last := fi.Size - 1
		if part.to >= 0 && part.to < last {
			last = part.to
		}
		status, n = http.StatusPartialContent, last-part.from+1
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", part.from, last, fi.Size))
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	dw := s.newDeadlineWriter(w)
	defer dw.reset()
	if _, err := io.CopyN(dw, rc, n); err != nil {
		s.log.Warn("file download cut short", "sandbox", id, "path", p, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// rangePastEnd is the error of a range that starts at byte from, at or
// past the end of the file fi.
func rangePastEnd(fi *cove.FileInfo, from int64) *cove.Error {
	if fi.Size == 0 {
		return cove.Errorf(cove.CodeInvalid, "the range starts at byte %d, but %s is empty: no range of it can be read; ask for it without a Range header", from, fi.Path)
	}
	return cove.Errorf(cove.CodeInvalid, "the range starts at byte %d, past the end of %s (%d bytes): start it at byte %d or before, such as bytes=0-", from, fi.Path, fi.Size, fi.Size-1)
}

// span is a byte range of a file: from its first byte to its last (-1:
// the end).
type span struct{ from, to int64 }

// length is how many bytes the span asks for (0: to the end). A span to
// the largest byte number HTTP can name from byte 0 (bytes=0-
// 9223372036854775807, as a client that means "to the end" may send) holds
// one byte more than an int64 counts: it is read to the end.
func (sp span) length() int64 {
	if sp.to < 0 || sp.to-sp.from == math.MaxInt64 {
		return 0
	}
	return sp.to - sp.from + 1
}

// byteRange reads a request's Range header, when it asks for one part of
// the file from a given byte: "bytes=N-" or "bytes=N-M". Other forms
// (several parts, a suffix) and a Range with If-Range are answered with
// the whole file, as HTTP allows a server to.
func byteRange(r *http.Request) (span, bool) {
	whole := span{0, -1}
	h := r.Header.Get("Range")
	if h == "" || r.Header.Get("If-Range") != "" {
		return whole, false
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return whole, false
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	from, err := strconv.ParseInt(first, 10, 64)
	if !ok || err != nil || from < 0 {
		return whole, false
	}
	if last == "" {
		return span{from, -1}, true
	}
	to, err := strconv.ParseInt(last, 10, 64)
	if err != nil || to < from {
		return whole, false
	}
	return span{from, to}, true
}

func (s *server) listFiles(w http.ResponseWriter, r *http.Request, id, p string, recursive bool) error {
	fis, err := s.svc.ListFiles(r.Context(), id, p, recursive)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &wire.FileList{Entries: wire.FileInfosFrom(fis)})
	return nil
}

func (s *server) downloadArchive(w http.ResponseWriter, r *http.Request, id, p, format string) error {
	rc, err := s.svc.DownloadArchive(r.Context(), id, p, format)
	if err != nil {
		return err
	}
	defer rc.Close()
	name := path.Base(p)
	if name == "." || name == "/" || name == "" {
		name = "workspace"
	}
	h := w.Header()
	h.Set("Content-Type", map[string]string{"tar": "application/x-tar", "zip": "application/zip"}[format])
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name + "." + format}))
	w.WriteHeader(http.StatusOK)
	dw := s.newDeadlineWriter(w)
	defer dw.reset()
	if _, err := io.Copy(dw, rc); err != nil {
		if r.Context().Err() == nil {
			s.log.Warn("archive download cut short", "sandbox", id, "path", p, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	return nil
}

// headFile answers HEAD .../files/{path} with the file's FileInfo in the
// X-Cove-File-Info header.
func (s *server) headFile(w http.ResponseWriter, r *http.Request) error {
	fi, err := s.svc.StatFile(r.Context(), r.PathValue("id"), filePath(r))
	if err != nil {
		return err
	}
	setFileHeaders(w.Header(), fi)
	if fi.IsDir {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size, 10))
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// setFileHeaders describes a file being served. User files are served
// with a sandboxing content security policy so that an HTML file from a
// sandbox cannot run script as the API's origin.
func setFileHeaders(h http.Header, fi *cove.FileInfo) {
	h.Set(headerFileInfo, fileInfoHeader(fi))
	ct := mime.TypeByExtension(path.Ext(fi.Name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("Cache-Control", "no-store")
	if !fi.ModTime.IsZero() {
		h.Set("Last-Modified", fi.ModTime.UTC().Format(http.TimeFormat))
	}
}

// fileInfoHeader returns fi as JSON with every non-ASCII character
// escaped, fit for a header value.
func fileInfoHeader(fi *cove.FileInfo) string {
	b, _ := json.Marshal(wire.FileInfoFrom(fi))
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		switch {
		case r < 0x80:
			sb.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&sb, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&sb, `\u%04x`, r)
		}
	}
	return sb.String()
}

// putFile answers PUT .../files/{path}: the raw body becomes the file.
func (s *server) putFile(w http.ResponseWriter, r *http.Request) error {
	if p := r.PathValue("path"); p == "" || strings.HasSuffix(p, "/") {
		return invalid("PUT writes a file, and %q names a directory: give the file's name after the last slash (POST .../fs/mkdir makes a directory)", "/"+p)
	}
	var mode uint32
	if m := r.URL.Query().Get("mode"); m != "" {
		var err error
		if mode, err = wire.ParseMode(m); err != nil {
			return invalid("%s", err.Error())
		}
	}
	body, err := s.uploadBody(w, r)
	if err != nil {
		return err
	}
	defer body.done()
	fi, err := s.svc.WriteFile(r.Context(), r.PathValue("id"), filePath(r), body, mode)
	if ferr := body.failure(s.opts.MaxUploadBytes); ferr != nil {
		return ferr
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, wire.FileInfoFrom(fi))
	return nil
}

func (s *server) deleteFile(w http.ResponseWriter, r *http.Request) error {
	recursive, err := queryBool(r, "recursive")
	if err != nil {
		return err
	}
	if err := s.svc.DeleteFile(r.Context(), r.PathValue("id"), filePath(r), recursive); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// uploadBody returns the request body bounded by MaxUploadBytes and by
// the stall timeout. Call its done when finished with it.
func (s *server) uploadBody(w http.ResponseWriter, r *http.Request) (*cappedReader, error) {
	if err := refuseEncoding(r); err != nil {
		return nil, err
	}
	if r.ContentLength > s.opts.MaxUploadBytes {
		return nil, tooLarge("the upload", s.opts.MaxUploadBytes)
	}
	return &cappedReader{r: http.MaxBytesReader(w, r.Body, s.opts.MaxUploadBytes), rc: http.NewResponseController(w), timeout: s.opts.StallTimeout}, nil
}

// cappedReader reads an upload, extending the read deadline before each
// read, and notes when the reader under it failed for being too long or
// for a stall, whatever the consumer then does with the error.
type cappedReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
	over    bool
	stalled bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	c.rc.SetReadDeadline(time.Now().Add(c.timeout))
	n, err := c.r.Read(p)
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
	case errors.As(err, &mbe):
		c.over = true
	case isTimeout(err):
		c.stalled = true
	}
	return n, err
}

// done clears the read deadline: the connection may serve more requests.
func (c *cappedReader) done() { c.rc.SetReadDeadline(time.Time{}) }

// failure returns the error of an upload that failed for its size or a
// stall; nil otherwise.
func (c *cappedReader) failure(limit int64) error {
	switch {
	case c.over:
		return tooLarge("the upload", limit)
	case c.stalled:
		return statusError(http.StatusRequestTimeout, cove.Errorf(cove.CodeInvalid, "the upload stalled: nothing came for a while"))
	}
	return nil
}

// limitedReader reads at most n bytes and then fails, noting it; it bounds
// decompressed data.
type limitedReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.over = true
			return 0, cove.Errorf(cove.CodeInvalid, "the decompressed upload is too large")
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// uploadFiles answers POST .../files: many files as multipart/form-data,
// or a tar archive (optionally gzipped) to extract, into the directory
// ?path= (default the workspace).
func (s *server) uploadFiles(w http.ResponseWriter, r *http.Request) error {
	dir := r.URL.Query().Get("path")
	extract := r.URL.Query().Get("extract")
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case extract == "" && mt == "multipart/form-data":
		return s.uploadMultipart(w, r, dir, params["boundary"])
	case extract == "tar" || extract == "tar.gz" || extract == "tgz" || (extract == "" && isTarType(mt)):
		gzipped := extract == "tar.gz" || extract == "tgz" || (extract == "" && isGzipType(mt))
		return s.uploadTar(w, r, dir, gzipped)
	case extract != "":
		return invalid("unknown extract=%q: use extract=tar (gzipped or not)", cove.Excerpt(extract, 64))
	}
	return statusError(http.StatusUnsupportedMediaType, cove.Errorf(cove.CodeInvalid,
		"send files as multipart/form-data, or a tar archive as application/x-tar or application/gzip (or with ?extract=tar)"))
}

// isGzipType says whether a media type says the body is gzipped.
func isGzipType(mt string) bool {
	switch mt {
	case "application/gzip", "application/x-gzip", "application/x-compressed-tar":
		return true
	}
	return false
}

func isTarType(mt string) bool {
	switch mt {
	case "application/x-tar", "application/tar", "application/gzip", "application/x-gzip", "application/x-gtar", "application/x-compressed-tar":
		return true
	}
	return false
}

// headerPartMode gives a multipart part's permission bits, in octal.
const headerPartMode = "X-Cove-Mode"

// uploadMultipart writes every part of a multipart body as a file, all or
// nothing: the service writes none unless every part is valid, so that a
// bad part after good ones leaves the workspace as it was.
func (s *server) uploadMultipart(w http.ResponseWriter, r *http.Request, dir, boundary string) error {
	if boundary == "" {
		return invalid("multipart/form-data without a boundary")
	}
	body, err := s.uploadBody(w, r)
	if err != nil {
		return err
	}
	defer body.done()
	mr := multipart.NewReader(body, boundary)
	n := 1
	first, err := s.nextPart(mr, body, dir, n)
	if errors.Is(err, io.EOF) {
		return invalid("the multipart body holds no file")
	}
	if err != nil {
		return err
	}
	// partErr is why the parts could not be read: the service only
	// learns that reading failed.
	var mu sync.Mutex
	var partErr error
	failed := func(err error) {
		mu.Lock()
		if partErr == nil {
			partErr = err
		}
		mu.Unlock()
	}
	// A part's body that cannot be read to its end (a body cut short, a
	// broken boundary) is that part's error, named by its path.
	named := func(f *cove.FileUpload, n int) *cove.FileUpload {
		f.Body = &partReader{r: f.Body, failed: func(err error) error {
			err = invalid("part %d of the upload (%s) cannot be read to its end: %v; send each file whole, with its closing boundary", n, cove.Excerpt(f.Path, 64), err)
			failed(err)
			return err
		}}
		return f
	}
	first = named(first, n)
	next := func() (*cove.FileUpload, error) {
		if first != nil {
			f := first
			first = nil
			return f, nil
		}
		n++
		f, err := s.nextPart(mr, body, dir, n)
		if err != nil && !errors.Is(err, io.EOF) {
			failed(err)
		}
		if err != nil {
			return nil, err
		}
		return named(f, n), nil
	}
	fis, err := s.svc.UploadFiles(r.Context(), r.PathValue("id"), next)
	if ferr := body.failure(s.opts.MaxUploadBytes); ferr != nil {
		return ferr
	}
	mu.Lock()
	perr := partErr
	mu.Unlock()
	if perr != nil {
		return perr
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, &wire.UploadResult{Files: wire.FileInfosFrom(fis)})
	return nil
}

// nextPart returns the next part of a multipart upload as the file it
// holds, the nth of the upload, under the directory dir; io.EOF after the
// last.
func (s *server) nextPart(mr *multipart.Reader, body *cappedReader, dir string, n int) (*cove.FileUpload, error) {
	part, err := mr.NextRawPart()
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if ferr := body.failure(s.opts.MaxUploadBytes); ferr != nil {
		return nil, ferr
	}
	if err != nil {
		return nil, invalid("malformed multipart body: %v", err)
	}
	name := partPath(part)
	if name == "" {
		return nil, invalid("part %d of the upload has neither a filename nor a field name to use as its path", n)
	}
	if dir != "" && dir != "." {
		// Joining would clean a ".." away: a part may not leave the
		// directory it is uploaded into.
		if !filepath.IsLocal(name) {
			return nil, invalid("part %d of the upload goes to %q, which is not inside the directory path=%q: give a path relative to it", n, cove.Excerpt(name, 64), cove.Excerpt(dir, 64))
		}
		name = path.Join(dir, name)
	}
	var mode uint32
	if m := part.Header.Get(headerPartMode); m != "" {
		if mode, err = wire.ParseMode(m); err != nil {
			return nil, invalid("part %d of the upload (%s): %s: %s", n, cove.Excerpt(name, 64), headerPartMode, err.Error())
		}
	}
	switch cte := strings.ToLower(strings.TrimSpace(part.Header.Get("Content-Transfer-Encoding"))); cte {
	case "", "binary", "8bit", "7bit":
	default:
		// Written as sent, the file would hold the encoded text.
		return nil, invalid("part %d of the upload (%s) has Content-Transfer-Encoding %q, which cove does not decode: send the file's bytes as they are, without that header (RFC 7578)", n, cove.Excerpt(name, 64), cove.Excerpt(cte, 64))
	}
	return &cove.FileUpload{Path: name, Mode: mode, Body: part}, nil
}

// partReader reads a part's body and turns a failure to read it (other
// than its end) into the part's own error, through failed.
type partReader struct {
	r      io.Reader
	failed func(error) error
}

func (p *partReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		err = p.failed(err)
	}
	return n, err
}

// partPath returns where a part goes: its filename as sent (with its
// directories, which multipart.Part.FileName would strip), else its field
// name.
func partPath(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	if f := params["filename"]; f != "" {
		return f
	}
	return params["name"]
}

// uploadTar extracts a tar archive, gzipped or not (as its first bytes
// say); gzipped says that the request said it is gzipped.
func (s *server) uploadTar(w http.ResponseWriter, r *http.Request, dir string, gzipped bool) error {
	if dir == "" {
		dir = "."
	}
	body, err := s.uploadBody(w, r)
	if err != nil {
		return err
	}
	defer body.done()
	br := bufio.NewReader(body)
	var rd io.Reader = br
	var limited *limitedReader
	magic, _ := br.Peek(2)
	isGzip := len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
	if gzipped && !isGzip {
		if ferr := body.failure(s.opts.MaxUploadBytes); ferr != nil {
			return ferr
		}
		return invalid("the upload is said to be gzipped (%s) but is not gzip: it does not begin with gzip's bytes 1f 8b; send a plain tar as application/x-tar (or ?extract=tar), or gzip it", gzipSaidBy(r))
	}
	if isGzip {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return invalid("the upload looks gzipped but is not: %v", err)
		}
		defer zr.Close()
		limited = &limitedReader{r: zr, n: s.opts.MaxUploadBytes}
		rd = limited
	}
	err = s.svc.UploadArchive(r.Context(), r.PathValue("id"), dir, rd)
	if ferr := body.failure(s.opts.MaxUploadBytes); ferr != nil {
		return ferr
	}
	if limited != nil && limited.over {
		return tooLarge("the decompressed upload", s.opts.MaxUploadBytes)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) makeDir(w http.ResponseWriter, r *http.Request) error {
	var req wire.PathRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	fi, err := s.svc.MakeDir(r.Context(), r.PathValue("id"), req.Path)
	return answerFileInfo(w, fi, err)
}

func (s *server) moveFile(w http.ResponseWriter, r *http.Request) error {
	var req wire.MoveRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	fi, err := s.svc.MoveFile(r.Context(), r.PathValue("id"), req.From, req.To)
	return answerFileInfo(w, fi, err)
}

func (s *server) chmodFile(w http.ResponseWriter, r *http.Request) error {
	var req wire.ChmodRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Mode == nil {
		return invalid("mode is required: give octal permission bits such as \"0755\"")
	}
	fi, err := s.svc.ChmodFile(r.Context(), r.PathValue("id"), req.Path, uint32(*req.Mode))
	return answerFileInfo(w, fi, err)
}

func answerFileInfo(w http.ResponseWriter, fi *cove.FileInfo, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.FileInfoFrom(fi))
	return nil
}

func (s *server) searchFiles(w http.ResponseWriter, r *http.Request) error {
	var req wire.SearchRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	sr, err := req.Request()
	if err != nil {
		return err
	}
	res, err := s.svc.SearchFiles(r.Context(), r.PathValue("id"), sr)
	if err != nil {
		return err
	}
	if res.Matches == nil {
		res.Matches = []cove.SearchMatch{}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *server) replaceInFiles(w http.ResponseWriter, r *http.Request) error {
	var req wire.ReplaceRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	res, err := s.svc.ReplaceInFiles(r.Context(), r.PathValue("id"), cove.ReplaceRequest(req))
	if err != nil {
		return err
	}
	if res == nil {
		res = []*cove.ReplaceResult{}
	}
	writeJSON(w, http.StatusOK, &wire.ReplaceResults{Results: res})
	return nil
}

// gzipSaidBy names what in r says that its body is gzipped.
func gzipSaidBy(r *http.Request) string {
	if x := r.URL.Query().Get("extract"); x != "" {
		return "extract=" + cove.Excerpt(x, 64)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return "Content-Type " + mt
}
