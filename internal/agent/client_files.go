package agent

import (
	"context"
	"encoding/json"
	"io"

	"github.com/hashicorp/yamux"

	"github.com/cove-sandbox/cove"
)

// PathSpec names a workspace path: relative to the workspace, or absolute
// under /workspace. Recursive applies to listing and removal.
type PathSpec struct {
	Path      string `json:"path"`
	Recursive bool   `json:"recursive,omitempty"`
}

// ReadSpec reads the regular file Path from byte Offset, at most Length
// bytes (0: to its end).
type ReadSpec struct {
	Path   string `json:"path"`
	Offset int64  `json:"offset,omitempty"`
	Length int64  `json:"length,omitempty"`
}

// MoveSpec renames From to To.
type MoveSpec struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ChmodSpec sets the permission bits of Path.
type ChmodSpec struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

// WriteSpec is a file upload: the body follows the request in frames.
type WriteSpec struct {
	Path string `json:"path"`
	// Mode holds permission bits (0: 0644).
	Mode uint32 `json:"mode,omitempty"`
	// MaxBytes caps the body (0: no cap but the workspace's disk limit).
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// ArchiveSpec is an archive download (Format "tar" or "zip") or upload (a
// tar stream, gzip-compressed or not, whose body follows the request).
type ArchiveSpec struct {
	Path   string `json:"path"`
	Format string `json:"format,omitempty"`
	// MaxBytes and MaxFiles bound an upload's extracted content and
	// entries (0: the defaults of ArchiveLimits). For a download, MaxBytes
	// is the workspace's disk limit, which bounds the archive's content
	// (see archiveBound; 0: the agent works it out).
	MaxBytes int64 `json:"max_bytes,omitempty"`
	MaxFiles int   `json:"max_files,omitempty"`
}

// UploadSpec is an upload of several files, all or nothing: for each
// file a frameUploadFile with its uploadHeader and frameUpload frames of
// its content follow the request, then a frameUploadEnd.
type UploadSpec struct {
	// MaxBytes caps the content of all the files together (0: no cap but
	// the workspace's disk limit); MaxFiles caps their number (0: 100000).
	MaxBytes int64 `json:"max_bytes,omitempty"`
	MaxFiles int   `json:"max_files,omitempty"`
}

// uploadHeader begins one file of an UploadSpec upload.
type uploadHeader struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode,omitempty"`
}

// isFileOp reports whether r is a file operation.
func (r *Request) isFileOp() bool {
	return r.Stat != nil || r.List != nil || r.Mkdir != nil || r.Move != nil ||
		r.Remove != nil || r.Chmod != nil || r.Search != nil || r.Replace != nil ||
		r.WriteStream != nil || r.ReadStream != nil || r.ArchiveOut != nil || r.ArchiveIn != nil ||
		r.Upload != nil
}

// Frames of the file operations. File and archive bodies travel in the
// byte-carrying frames that executions use for their standard streams.
const (
	frameUpload    = frameStdin    // host to agent: a chunk of a file or archive
	frameUploadEnd = frameStdinEOF // host to agent: the upload is complete
	frameDownload  = frameStdout   // agent to host: a chunk of a file or archive

	// frameInfo (agent to host) carries the cove.FileInfo of what a
	// download is about to send, before its first byte.
	frameInfo byte = 'H'
	// frameItems (agent to host) carries a JSON array of result items
	// (file infos, search matches, replace counts): results too large for
	// one frame come in several.
	frameItems byte = 'L'
	// frameUploadFile (host to agent) begins the next file of an
	// UploadSpec upload: its uploadHeader as JSON.
	frameUploadFile byte = 'N'
)

// Bounds of the file operations that both sides know.
const (
	// maxListEntries caps a listing.
	maxListEntries = 100000
	// maxListNameBytes caps the bytes of a listing's paths and link
	// targets together: 100000 entries of names up to the kernel's 4 KiB
	// would make an answer of gigabytes in cove's memory, while the
	// sandbox's memory limit counts none of it.
	maxListNameBytes = 16 << 20
	// maxItemsBytes caps what the host takes in the item frames of one
	// answer, whatever the agent sends.
	maxItemsBytes = 4 * maxListNameBytes
	// maxSearchResults is the default and largest number of matches.
	maxSearchResults = 1000
	// defaultArchiveMaxBytes and defaultArchiveMaxFiles are the defaults
	// of ArchiveLimits.
	defaultArchiveMaxBytes = 1 << 30
	defaultArchiveMaxFiles = 100000
)

// searchDone is the result that ends a search's items.
type searchDone struct {
	Truncated bool `json:"truncated"`
}

// ArchiveLimits bound what ArchiveIn extracts, against archive bombs.
type ArchiveLimits struct {
	// MaxBytes caps the total size of the extracted files (0: 1 GiB).
	MaxBytes int64
	// MaxFiles caps the number of entries (0: 100000).
	MaxFiles int
}

// Every path below is relative to the workspace, or absolute under
// /workspace, and is resolved inside it: neither ".." nor a symbolic link
// leads out. Errors are *cove.Error values with the code not_found,
// invalid (a bad path or argument, a link out of the workspace, no space
// left), conflict (something in the way, or a mode that forbids the
// sandbox user, which it can change) or internal; unavailable when the
// agent is gone. No operation reports an error after it made its change.

// Stat describes path without following it if it is a symbolic link.
func (c *Client) Stat(ctx context.Context, path string) (*cove.FileInfo, error) {
	return c.fileInfo(ctx, &Request{Stat: &PathSpec{Path: path}})
}

// List describes the entries of the directory path (empty: the
// workspace), or of its whole tree when recursive, sorted by path.
// Symbolic links are listed as links, never followed. A listing of more
// than 100000 entries, or with more than 16 MiB of names, is an invalid
// error.
func (c *Client) List(ctx context.Context, path string, recursive bool) ([]*cove.FileInfo, error) {
	return callItems[*cove.FileInfo](ctx, c, &Request{List: &PathSpec{Path: path, Recursive: recursive}}, maxListEntries, nil)
}

// Mkdir creates the directory path and its parents; an existing directory
// is fine, a file in the way is a conflict.
func (c *Client) Mkdir(ctx context.Context, path string) (*cove.FileInfo, error) {
	return c.fileInfo(ctx, &Request{Mkdir: &PathSpec{Path: path}})
}

// Move renames from to to, creating to's parents. It never replaces: an
// existing to is a conflict.
func (c *Client) Move(ctx context.Context, from, to string) (*cove.FileInfo, error) {
	return c.fileInfo(ctx, &Request{Move: &MoveSpec{From: from, To: to}})
}

// Remove deletes path, a directory with everything in it when recursive
// (a link is removed, not what it points to). What does not exist is
// not_found; a non-empty directory without recursive is a conflict; the
// workspace itself is invalid.
func (c *Client) Remove(ctx context.Context, path string, recursive bool) error {
	_, err := c.call(ctx, &Request{Remove: &PathSpec{Path: path, Recursive: recursive}})
	return err
}

// Chmod sets the permission bits of path (or of what it links to, inside
// the workspace). mode may hold permission bits only: setuid, setgid and
// sticky are invalid, and so is the workspace itself, whose mode every
// operation needs.
func (c *Client) Chmod(ctx context.Context, path string, mode uint32) (*cove.FileInfo, error) {
	return c.fileInfo(ctx, &Request{Chmod: &ChmodSpec{Path: path, Mode: mode}})
}

// Search finds, under req.Path, entries whose base name matches the glob
// req.Name (path.Match) and, with req.Content, the lines of text files
// that contain it literally. Files larger than 10 MiB and binary files (a
// NUL byte in their first 8 KiB) are not searched; reported lines are cut
// to 500 characters; symbolic links are not followed.
func (c *Client) Search(ctx context.Context, req cove.SearchRequest) (*cove.SearchResult, error) {
	var done searchDone
	matches, err := callItems[cove.SearchMatch](ctx, c, &Request{Search: &req}, maxSearchResults, &done)
	if err != nil {
		return nil, err
	}
	return &cove.SearchResult{Matches: matches, Truncated: done.Truncated}, nil
}

// Replace replaces every occurrence of req.Old with req.New in each of
// req.Paths and says how many each file got, all or nothing: every file
// is checked and its new content written to a temporary file in its
// directory, keeping its permission bits, before any file is replaced in
// one rename. Files larger than 10 MiB, directories and symbolic links
// are invalid; a missing file is not found. An error leaves every file as
// it was.
func (c *Client) Replace(ctx context.Context, req cove.ReplaceRequest) ([]*cove.ReplaceResult, error) {
	return callItems[*cove.ReplaceResult](ctx, c, &Request{Replace: &req}, len(req.Paths), nil)
}

// WriteStream writes r to path with permission bits mode (0: 0644),
// creating parents. The file appears complete or not at all: the body goes
// to a temporary file that replaces path once r is exhausted. More than
// maxBytes (if positive) is an invalid error that leaves nothing behind; a
// directory at path is a conflict. If reading r fails, that error is
// returned (as an invalid error that wraps it).
func (c *Client) WriteStream(ctx context.Context, path string, mode uint32, r io.Reader, maxBytes int64) (*cove.FileInfo, error) {
	b, err := c.upload(ctx, &Request{WriteStream: &WriteSpec{Path: path, Mode: mode, MaxBytes: maxBytes}}, r)
	if err != nil {
		return nil, err
	}
	return decodeInfo(b)
}

// ReadStream opens the regular file path (a symbolic link inside the
// workspace is followed) and streams its content, whatever its size, in
// bounded memory. A directory, FIFO or device is invalid. The caller must
// close the reader; cancelling ctx ends the stream.
func (c *Client) ReadStream(ctx context.Context, path string) (io.ReadCloser, *cove.FileInfo, error) {
	return c.ReadRange(ctx, path, 0, 0)
}

// ReadRange is ReadStream from byte offset, of at most length bytes (0: to
// the end); an offset at or past the end reads nothing. The bytes before
// offset are not read.
func (c *Client) ReadRange(ctx context.Context, path string, offset, length int64) (io.ReadCloser, *cove.FileInfo, error) {
	if offset < 0 || length < 0 {
		return nil, nil, cove.Errorf(cove.CodeInvalid, "a part of a file starts at a byte offset of 0 or more and has a length of 0 (to the end) or more, not %d and %d", offset, length)
	}
	st, info, err := c.openDownload(ctx, &Request{ReadStream: &ReadSpec{Path: path, Offset: offset, Length: length}})
	if err != nil {
		return nil, nil, err
	}
	return newDownloadReader(ctx, st), info, nil
}

// ArchiveOut packs path, a directory (empty: the workspace) or a single
// file, as a "tar" or "zip" archive and streams it. Symbolic links are
// stored as links and never followed; FIFOs, sockets and devices are left
// out. A file or directory the sandbox user cannot read is a conflict
// found before the stream begins; an error after it began (the tree
// changed meanwhile) is returned by the reader's Read.
func (c *Client) ArchiveOut(ctx context.Context, path, format string, diskLimit int64) (io.ReadCloser, error) {
	st, _, err := c.openDownload(ctx, &Request{ArchiveOut: &ArchiveSpec{Path: path, Format: format, MaxBytes: diskLimit}})
	if err != nil {
		return nil, err
	}
	return newDownloadReader(ctx, st), nil
}

// ArchiveIn extracts the tar archive r, gzip-compressed or not (detected
// from its first bytes), into the directory path, which is created.
// Entries belong to the sandbox user and keep permission bits only. It
// refuses, as invalid: absolute names, names with "..", symbolic or hard
// links that lead out of the directory, entries inside symbolic links
// (pre-existing ones included) and more entries or bytes than limits
// allow, which stops decompression bombs. FIFOs and devices are skipped.
// The archive is extracted into a hidden staging directory in the
// workspace and moved into place only once all of it was extracted and
// found valid: on error the destination is as it was, and the staging
// directory is gone. A file of the archive replaces a file (or link) at
// its path; a directory is merged with the directory at its path; a
// directory where the archive has a file, a file where it has a
// directory, or a symbolic link where it has a directory is an error.
func (c *Client) ArchiveIn(ctx context.Context, path string, r io.Reader, limits ArchiveLimits) error {
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = defaultArchiveMaxBytes
	}
	if limits.MaxFiles <= 0 {
		limits.MaxFiles = defaultArchiveMaxFiles
	}
	_, err := c.upload(ctx, &Request{ArchiveIn: &ArchiveSpec{Path: path, MaxBytes: limits.MaxBytes, MaxFiles: limits.MaxFiles}}, r)
	return err
}

// UploadFile is one file of UploadFiles: its path (relative to the
// workspace, or absolute under /workspace), permission bits (0: 0644)
// and content.
type UploadFile struct {
	Path string
	Mode uint32
	Body io.Reader
}

// UploadFiles writes the files that next returns, until it returns
// io.EOF, all or nothing: they are written into a hidden staging
// directory in the workspace and moved into place, replacing files at
// their paths and creating parents, only once every one was received
// and found valid. A bad path, a file or directory in the way, a
// symbolic link where a parent directory goes, or more than
// limits.MaxBytes of content in all leaves the workspace as it was. It
// describes the files written, in the order given. If next fails, that
// error is returned (as an invalid error that wraps it) and nothing is
// written.
func (c *Client) UploadFiles(ctx context.Context, next func() (*UploadFile, error), limits ArchiveLimits) ([]*cove.FileInfo, error) {
	infos := []*cove.FileInfo{}
	err := c.duplex(ctx, &Request{Upload: &UploadSpec{MaxBytes: limits.MaxBytes, MaxFiles: limits.MaxFiles}},
		func(w io.Writer) error { return sendFiles(w, next) },
		func(st *yamux.Stream) error {
			for {
				typ, payload, err := readFrame(st)
				switch {
				case err != nil:
					return streamBroke(ctx, err)
				case typ == frameItems:
					var batch []*cove.FileInfo
					if err := json.Unmarshal(payload, &batch); err != nil {
						return cove.Errorf(cove.CodeInternal, "malformed items from the agent: %w", err)
					}
					infos = append(infos, batch...)
				case typ == frameResult:
					return nil
				default:
					if err := frameErr(typ, payload); err != nil {
						return err
					}
					return cove.Errorf(cove.CodeInternal, "unexpected frame %q from the agent", typ)
				}
			}
		})
	if err != nil {
		return nil, err
	}
	return infos, nil
}

// duplex opens a stream for req and sends on it with send while receive
// reads the agent's answer. When receive ends it stops sending (a write
// blocked on the window fails) and waits until send returns, so that the
// caller may reuse what send read. A failure of send is the upload's
// fault (invalid); else the context's error, else receive's.
func (c *Client) duplex(ctx context.Context, req *Request, send func(io.Writer) error, receive func(*yamux.Stream) error) error {
	st, err := c.open(ctx, req)
	if err != nil {
		return err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { abandon(st) })
	defer stop()
	sendErr := make(chan error, 1)
	go func() {
		err := send(st)
		if err != nil {
			st.Close()
		}
		sendErr <- err
	}()
	rerr := receive(st)
	st.Close()
	var serr error
	select {
	case serr = <-sendErr:
	case <-ctx.Done():
	}
	switch {
	case serr != nil:
		return cove.Errorf(cove.CodeInvalid, "reading the upload: %w", serr)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return rerr
}

// sendFiles sends the files next returns. It returns the error of next
// or of reading a file, if any; a failed write means the agent stopped
// reading, and its answer says why.
func sendFiles(w io.Writer, next func() (*UploadFile, error)) error {
	buf := make([]byte, chunkSize)
	for {
		f, err := next()
		if err == io.EOF {
			writeFrame(w, frameUploadEnd, nil)
			return nil
		}
		if err != nil {
			return err
		}
		if writeJSONFrame(w, frameUploadFile, uploadHeader{Path: f.Path, Mode: f.Mode}) != nil {
			return nil
		}
		for f.Body != nil {
			n, err := f.Body.Read(buf)
			if n > 0 {
				if writeFrame(w, frameUpload, buf[:n]) != nil {
					return nil
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
	}
}

func (c *Client) fileInfo(ctx context.Context, req *Request) (*cove.FileInfo, error) {
	b, err := c.call(ctx, req)
	if err != nil {
		return nil, err
	}
	return decodeInfo(b)
}

func decodeInfo(b []byte) (*cove.FileInfo, error) {
	var fi cove.FileInfo
	if err := json.Unmarshal(b, &fi); err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "malformed file info from the agent: %w", err)
	}
	return &fi, nil
}

// streamBroke is the error of a stream that broke: the context's if it
// was cancelled.
func streamBroke(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return agentGone(err)
}

// callItems sends a request answered by items in frameItems frames, then
// a result decoded into final (if not nil). More than limit items is the
// agent misbehaving.
func callItems[T any](ctx context.Context, c *Client, req *Request, limit int, final any) ([]T, error) {
	st, err := c.open(ctx, req)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { abandon(st) })
	defer stop()
	items := []T{}
	size := 0
	for {
		typ, payload, err := readFrame(st)
		if err != nil {
			return nil, streamBroke(ctx, err)
		}
		switch typ {
		case frameItems:
			if size += len(payload); size > maxItemsBytes {
				return nil, cove.Errorf(cove.CodeInternal, "the agent sent more than %d bytes of items", maxItemsBytes)
			}
			var batch []T
			if err := json.Unmarshal(payload, &batch); err != nil {
				return nil, cove.Errorf(cove.CodeInternal, "malformed items from the agent: %w", err)
			}
			if len(items)+len(batch) > limit {
				return nil, cove.Errorf(cove.CodeInternal, "the agent sent more than %d items", limit)
			}
			items = append(items, batch...)
		case frameResult:
			if final != nil {
				if err := json.Unmarshal(payload, final); err != nil {
					return nil, cove.Errorf(cove.CodeInternal, "malformed result from the agent: %w", err)
				}
			}
			return items, nil
		default:
			return nil, frameErr(typ, payload)
		}
	}
}

// upload sends req, then r's bytes in frameUpload frames and a
// frameUploadEnd, and waits for the single result frame. The agent may
// answer before the body is all sent (an error); sending then stops. If
// reading r fails, the stream is closed so that the agent drops what it
// received, and that error is returned.
func (c *Client) upload(ctx context.Context, req *Request, r io.Reader) ([]byte, error) {
	var payload []byte
	err := c.duplex(ctx, req, func(w io.Writer) error { return sendBody(w, r) }, func(st *yamux.Stream) error {
		typ, p, err := readFrame(st)
		if err != nil {
			return streamBroke(ctx, err)
		}
		payload = p
		return frameErr(typ, p)
	})
	if err != nil {
		return nil, err
	}
	return payload, nil
}

// sendBody sends r in frames. It returns the error reading r, if any; a
// failed write means the agent stopped reading, and its answer says why.
func sendBody(w io.Writer, r io.Reader) error {
	buf := make([]byte, chunkSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if writeFrame(w, frameUpload, buf[:n]) != nil {
				return nil
			}
		}
		if err == io.EOF {
			writeFrame(w, frameUploadEnd, nil)
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// openDownload sends a request answered by a frameInfo and then a body,
// and reads the frameInfo.
func (c *Client) openDownload(ctx context.Context, req *Request) (*yamux.Stream, *cove.FileInfo, error) {
	st, err := c.open(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { abandon(st) })
	defer stop()
	typ, payload, err := readFrame(st)
	if err != nil {
		st.Close()
		return nil, nil, streamBroke(ctx, err)
	}
	if typ != frameInfo {
		st.Close()
		if err := frameErr(typ, payload); err != nil {
			return nil, nil, err
		}
		return nil, nil, cove.Errorf(cove.CodeInternal, "the agent ended a download before it began")
	}
	info, err := decodeInfo(payload)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, info, nil
}

// downloadReader reads the body of a download: frameDownload frames up to
// the result frame.
type downloadReader struct {
	st   *yamux.Stream
	ctx  context.Context
	stop func() bool
	buf  []byte
	err  error
}

func newDownloadReader(ctx context.Context, st *yamux.Stream) *downloadReader {
	return &downloadReader{st: st, ctx: ctx, stop: context.AfterFunc(ctx, func() { abandon(st) })}
}

func (d *downloadReader) Read(p []byte) (int, error) {
	for len(d.buf) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		typ, payload, err := readFrame(d.st)
		switch {
		case err != nil:
			d.err = streamBroke(d.ctx, err)
		case typ == frameDownload:
			d.buf = payload
		case typ == frameResult:
			d.err = io.EOF
		default:
			d.err = frameErr(typ, payload)
		}
	}
	n := copy(p, d.buf)
	d.buf = d.buf[n:]
	return n, nil
}

// Close ends the download; the agent stops sending.
func (d *downloadReader) Close() error {
	d.stop()
	return d.st.Close()
}
