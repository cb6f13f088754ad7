package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
)

// The file operations of a workspace. Each resolves its paths inside the
// workspace through the sandbox's agent; like the calls of surface.go they
// check ownership and count as activity.

// WriteFile implements cove.Service. Without a mode, a file that
// replaces another keeps that one's permission bits.
func (s *Service) WriteFile(ctx context.Context, id, path string, r io.Reader, mode uint32) (*cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	ag := sb.inst.Agent()
	if mode == 0 {
		mode = replacedMode(ctx, ag, path)
	}
	limited := &diskLimitReader{r: r, limit: sb.limits.DiskBytes, total: new(int64), what: path}
	fi, err := ag.WriteStream(ctx, path, mode, limited, sb.limits.DiskBytes)
	return fi, overDiskLimit(err)
}

// replacedMode is the mode of a file written without one: the permission
// bits of the regular file it replaces, as cp and docker cp keep them (an
// executable script stays executable), else 0, which the agent takes for
// 0644. The file may change before it is replaced; the mode is then the
// one it had a moment before, as with cp.
func replacedMode(ctx context.Context, ag *agent.Client, path string) uint32 {
	fi, err := ag.Stat(ctx, path)
	if err != nil || fi.IsDir || fi.Symlink != "" {
		// Nothing there, or something the write refuses or replaces
		// as a link: the write itself says what is wrong, if anything.
		return 0
	}
	return fi.Mode
}

// diskLimitReader reads the content of an upload and fails, with an
// *errOverDiskLimit, the read that would take it past the sandbox's disk
// limit: such an upload can never fit, and the error says so in the
// words (and with the code) of a full disk. The files of one upload
// share total.
type diskLimitReader struct {
	r     io.Reader
	limit int64  // the disk limit (0: none)
	total *int64 // what the upload read so far
	what  string // the file being read, for the error
	whole bool   // the file is one of an upload of several
}

func (d *diskLimitReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	*d.total += int64(n)
	if d.limit > 0 && *d.total > d.limit {
		return 0, &errOverDiskLimit{what: d.what, limit: d.limit, several: d.whole}
	}
	return n, err
}

// errOverDiskLimit is the error of an upload larger than the sandbox's
// disk limit.
type errOverDiskLimit struct {
	what    string
	limit   int64
	several bool // at what, a file of an upload of several
}

func (e *errOverDiskLimit) Error() string {
	subject, at := e.what, ""
	if e.several {
		subject, at = "the upload", "at "+e.what+"; "
	}
	return fmt.Sprintf("no space left in the workspace: %s is larger than its disk limit of %s (%screate a new sandbox with a larger disk: disk_mb, --disk)", subject, cove.FormatBytes(e.limit), at)
}

// overDiskLimit returns err, or for an upload that a diskLimitReader
// stopped, the quota_exceeded error that says why: the agent's client
// reports a body that failed to be read as invalid.
func overDiskLimit(err error) error {
	var over *errOverDiskLimit
	if errors.As(err, &over) {
		return &cove.Error{Code: cove.CodeQuotaExceeded, Message: over.Error(), Reason: cove.ReasonDiskFull}
	}
	return err
}

// ReadFile implements cove.Service.
func (s *Service) ReadFile(ctx context.Context, id, path string) (io.ReadCloser, *cove.FileInfo, error) {
	return s.ReadFileRange(ctx, id, path, 0, 0)
}

// ReadFileRange implements cove.Service.
func (s *Service) ReadFileRange(ctx context.Context, id, path string, offset, length int64) (io.ReadCloser, *cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, nil, err
	}
	if offset < 0 || length < 0 {
		return nil, nil, cove.Errorf(cove.CodeInvalid, "a part of a file starts at a byte offset of 0 or more and has a length of 0 (to its end) or more, not %d and %d", offset, length)
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	rc, fi, err := sb.inst.Agent().ReadRange(ctx, path, offset, length)
	if err != nil {
		done()
		return nil, nil, err
	}
	return &closer{ReadCloser: rc, done: done}, fi, nil
}

// closer runs done once when its reader is closed.
type closer struct {
	io.ReadCloser
	done func()
	once sync.Once
}

func (c *closer) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.done)
	return err
}

// StatFile implements cove.Service.
func (s *Service) StatFile(ctx context.Context, id, path string) (*cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Stat(ctx, path)
}

// ListFiles implements cove.Service.
func (s *Service) ListFiles(ctx context.Context, id, path string, recursive bool) ([]*cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().List(ctx, path, recursive)
}

// MakeDir implements cove.Service.
func (s *Service) MakeDir(ctx context.Context, id, path string) (*cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Mkdir(ctx, path)
}

// MoveFile implements cove.Service.
func (s *Service) MoveFile(ctx context.Context, id, from, to string) (*cove.FileInfo, error) {
	if err := utf8Paths(from, to); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Move(ctx, from, to)
}

// DeleteFile implements cove.Service.
func (s *Service) DeleteFile(ctx context.Context, id, path string, recursive bool) error {
	if err := utf8Paths(path); err != nil {
		return err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	return sb.inst.Agent().Remove(ctx, path, recursive)
}

// ChmodFile implements cove.Service.
func (s *Service) ChmodFile(ctx context.Context, id, path string, mode uint32) (*cove.FileInfo, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Chmod(ctx, path, mode)
}

// SearchFiles implements cove.Service.
func (s *Service) SearchFiles(ctx context.Context, id string, req cove.SearchRequest) (*cove.SearchResult, error) {
	if err := utf8Paths(req.Path); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Search(ctx, req)
}

// ReplaceInFiles implements cove.Service.
func (s *Service) ReplaceInFiles(ctx context.Context, id string, req cove.ReplaceRequest) ([]*cove.ReplaceResult, error) {
	if err := utf8Paths(req.Paths...); err != nil {
		return nil, err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return sb.inst.Agent().Replace(ctx, req)
}

// DownloadArchive implements cove.Service.
func (s *Service) DownloadArchive(ctx context.Context, id, path, format string) (io.ReadCloser, error) {
	if err := utf8Paths(path); err != nil {
		return nil, err
	}
	if format != "tar" && format != "zip" {
		return nil, cove.Errorf(cove.CodeInvalid, "unknown archive format %q: use tar or zip", format)
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	rc, err := sb.inst.Agent().ArchiveOut(ctx, path, format, sb.limits.DiskBytes)
	if err != nil {
		done()
		return nil, err
	}
	return &closer{ReadCloser: rc, done: done}, nil
}

// maxUploadFiles is how many files one archive or upload may hold.
const maxUploadFiles = 100000

// UploadArchive implements cove.Service.
func (s *Service) UploadArchive(ctx context.Context, id, path string, r io.Reader) error {
	if err := utf8Paths(path); err != nil {
		return err
	}
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	return sb.inst.Agent().ArchiveIn(ctx, path, r, agent.ArchiveLimits{MaxBytes: sb.limits.DiskBytes, MaxFiles: maxUploadFiles})
}

// UploadFiles implements cove.Service. The files are bound by the disk
// limit in all, as an archive's are. A file without a mode that replaces
// another keeps that one's permission bits, as WriteFile's does.
func (s *Service) UploadFiles(ctx context.Context, id string, next func() (*cove.FileUpload, error)) ([]*cove.FileInfo, error) {
	sb, done, err := s.running(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	ag := sb.inst.Agent()
	total := new(int64)
	infos, err := ag.UploadFiles(ctx, func() (*agent.UploadFile, error) {
		f, err := next()
		if err != nil {
			return nil, err
		}
		if f == nil {
			return nil, errors.New("no file and no error from the upload's next")
		}
		if err := utf8Paths(f.Path); err != nil {
			return nil, err
		}
		body := f.Body
		if body != nil {
			body = &diskLimitReader{r: &namedReader{r: body, path: f.Path}, limit: sb.limits.DiskBytes, total: total, what: f.Path, whole: true}
		}
		mode := f.Mode
		if mode == 0 {
			mode = replacedMode(ctx, ag, f.Path)
		}
		return &agent.UploadFile{Path: f.Path, Mode: mode, Body: body}, nil
	}, agent.ArchiveLimits{MaxBytes: sb.limits.DiskBytes, MaxFiles: maxUploadFiles})
	return infos, overDiskLimit(err)
}

// namedReader reads a file of an upload; an error reading it names the
// file, so that a failed upload of many files says which one failed.
type namedReader struct {
	r    io.Reader
	path string
}

func (n *namedReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("reading %s: %w", n.path, err)
	}
	return k, err
}

// utf8Paths refuses a workspace path that is not valid UTF-8. A file name
// may be any bytes, but the agent's protocol carries names as JSON text,
// which would replace the bytes it cannot hold with U+FFFD: the file
// written, read or removed would be another than the one named.
func utf8Paths(paths ...string) error {
	for _, p := range paths {
		if !utf8.ValidString(p) {
			return cove.Errorf(cove.CodeInvalid, "path %q is not valid UTF-8: cove's file operations take names in UTF-8 (run a command in the sandbox for a file whose name is other bytes)", p)
		}
	}
	return nil
}
