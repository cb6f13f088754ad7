package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
)

// Mode is a file's permission bits, written as an octal string ("0644").
// On input it also accepts a JSON number, taken as its value (420 is
// 0644).
type Mode uint32

// MarshalJSON writes the mode as four octal digits.
func (m Mode) MarshalJSON() ([]byte, error) {
	return json.Marshal(m.String())
}

// String returns the mode as four octal digits.
func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// UnmarshalJSON reads an octal string or a number. Errors: a
// *json.UnmarshalTypeError (see refused).
func (m *Mode) UnmarshalJSON(b []byte) error {
	err := stringOrNumber(b, func(s string) error {
		v, err := ParseMode(s)
		if err == nil {
			*m = Mode(v)
		}
		return err
	}, func(n string) error {
		v, err := strconv.ParseUint(n, 10, 32)
		if err == nil && v > 0o7777 {
			err = strconv.ErrRange
		}
		if err == nil {
			*m = Mode(v)
		}
		return err
	})
	if err != nil {
		return refused(reflect.TypeFor[Mode](), b)
	}
	return nil
}

// ParseMode parses permission bits in octal ("0755", "755", "0o755").
func ParseMode(s string) (uint32, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	v, err := strconv.ParseUint(t, 8, 32)
	if err != nil || v > 0o7777 || t == "" {
		return 0, fmt.Errorf("invalid mode %q: use octal permission bits such as 0644 or 0755", cove.Excerpt(s, 64))
	}
	return uint32(v), nil
}

// FileInfo is cove.FileInfo on the wire.
type FileInfo struct {
	Path    string    `json:"path"`
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Mode    Mode      `json:"mode"`
	IsDir   bool      `json:"is_dir"`
	Symlink string    `json:"symlink,omitempty"`
	ModTime time.Time `json:"mod_time"`
}

// FileInfoFrom returns fi on the wire.
func FileInfoFrom(fi *cove.FileInfo) *FileInfo {
	return &FileInfo{Path: fi.Path, Name: fi.Name, Size: fi.Size, Mode: Mode(fi.Mode), IsDir: fi.IsDir, Symlink: fi.Symlink, ModTime: fi.ModTime}
}

// FileInfosFrom returns a list of fis on the wire (never nil).
func FileInfosFrom(fis []*cove.FileInfo) []*FileInfo {
	out := make([]*FileInfo, 0, len(fis))
	for _, fi := range fis {
		out = append(out, FileInfoFrom(fi))
	}
	return out
}

// Cove converts w back to a cove.FileInfo.
func (w *FileInfo) Cove() *cove.FileInfo {
	return &cove.FileInfo{Path: w.Path, Name: w.Name, Size: w.Size, Mode: uint32(w.Mode), IsDir: w.IsDir, Symlink: w.Symlink, ModTime: w.ModTime}
}

// FileList is a directory listing: the answer of GET on a directory.
type FileList struct {
	Entries []*FileInfo `json:"entries"`
}

// UploadResult is the answer of a multipart upload.
type UploadResult struct {
	Files []*FileInfo `json:"files"`
}

// PathRequest is the body of POST .../fs/mkdir.
type PathRequest struct {
	Path string `json:"path"`
}

// MoveRequest is the body of POST .../fs/move.
type MoveRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ChmodRequest is the body of POST .../fs/chmod.
type ChmodRequest struct {
	Path string `json:"path"`
	Mode *Mode  `json:"mode"`
}

// SearchRequest is the body of POST .../fs/search.
type SearchRequest struct {
	Path       string `json:"path,omitempty"`
	Name       string `json:"name,omitempty"`
	Content    string `json:"content,omitempty"`
	MaxResults int    `json:"max_results,omitempty"`
}

// Request converts r to a cove.SearchRequest. Errors: invalid (a
// negative max_results).
func (r SearchRequest) Request() (cove.SearchRequest, error) {
	if r.MaxResults < 0 {
		return cove.SearchRequest{}, cove.Errorf(cove.CodeInvalid, "max_results %d must not be negative: leave it out (or 0) for the default of 1000", r.MaxResults)
	}
	return cove.SearchRequest(r), nil
}

// SearchResult is the answer of POST .../fs/search.
type SearchResult = cove.SearchResult

// ReplaceRequest is the body of POST .../fs/replace. It has the fields of
// cove.ReplaceRequest, so that the two convert into each other; decoding
// tells a missing "new" from "" instead.
type ReplaceRequest struct {
	Paths []string `json:"paths"`
	Old   string   `json:"old"`
	New   string   `json:"new"`
}

// UnmarshalJSON decodes r strictly (no unknown fields) and refuses an
// object without "new": replacing with "" deletes the text, which a
// client that forgot the field did not ask for.
func (r *ReplaceRequest) UnmarshalJSON(b []byte) error {
	var v struct {
		Paths []string `json:"paths"`
		Old   string   `json:"old"`
		New   *string  `json:"new"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if v.New == nil {
		return cove.Errorf(cove.CodeInvalid, `new is required (use "" to delete the text)`)
	}
	*r = ReplaceRequest{Paths: v.Paths, Old: v.Old, New: *v.New}
	return nil
}

// ReplaceResults is the answer of POST .../fs/replace.
type ReplaceResults struct {
	Results []*cove.ReplaceResult `json:"results"`
}

// ArchiveFormats are the formats of GET .../files/{path}?archive=.
var ArchiveFormats = []string{"tar", "zip"}
