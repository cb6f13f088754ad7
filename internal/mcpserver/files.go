package mcpserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

// Bounds of read_file.
const (
	// defaultReadBytes keeps a part of a file near what a model reads
	// of a program's output: two streams of DefaultMaxOutputChars.
	defaultReadBytes = 40000
	// maxPartBytes caps a part of text or base64 whatever max_bytes
	// asks, so that one call stays bounded for a model's context as a
	// program's output is: a little more than the 40000 characters a
	// run's two streams show, about 16k tokens of text. The next part
	// is a call away (next_offset).
	maxPartBytes = 64 << 10
	// maxReadBytes is the largest image read whole, as image content.
	maxReadBytes = 4 << 20
)

type writeFileInput struct {
	SandboxID  string `json:"sandbox_id" jsonschema:"the sandbox to write into"`
	Path       string `json:"path" jsonschema:"the file's path, relative to /workspace (or absolute under it)"`
	Content    string `json:"content" jsonschema:"the file's content: text, or base64 when base64 is set"`
	Base64     bool   `json:"base64,omitempty" jsonschema:"content is base64-encoded binary data"`
	Executable bool   `json:"executable,omitempty" jsonschema:"make the file executable (mode 0755 rather than 0644)"`
}

type fileInfoOutput struct {
	Path string `json:"path" jsonschema:"the path, relative to /workspace"`
	Size int64  `json:"size" jsonschema:"size in bytes"`
}

func (s *Server) writeFile(ctx context.Context, st *session, in writeFileInput) (*mcp.CallToolResult, fileInfoOutput, error) {
	data := []byte(in.Content)
	if in.Base64 {
		var err error
		if data, err = base64.StdEncoding.DecodeString(strings.TrimSpace(in.Content)); err != nil {
			return nil, fileInfoOutput{}, s.invalid("write_file", "content is not valid base64: %v", err)
		}
	}
	var mode uint32
	if in.Executable {
		mode = 0o755
	}
	fi, err := s.svc.WriteFile(ctx, in.SandboxID, in.Path, bytes.NewReader(data), mode)
	if err != nil {
		return nil, fileInfoOutput{}, err
	}
	st.use(in.SandboxID)
	text := fmt.Sprintf("wrote %s (%s) in sandbox %s", fi.Path, cove.FormatBytes(fi.Size), in.SandboxID)
	return textResult(text), fileInfoOutput{Path: fi.Path, Size: fi.Size}, nil
}

type readFileInput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox to read from"`
	Path      string `json:"path" jsonschema:"the file's path, relative to /workspace (or absolute under it)"`
	Offset    int64  `json:"offset,omitempty" jsonschema:"the byte to start at (default 0), to read a long file in parts"`
	MaxBytes  int64  `json:"max_bytes,omitempty" jsonschema:"how many bytes of text or binary data to read at most (default 40000, at most 65536 a call: a larger value reads 65536; images are read whole, up to 4 MiB)"`
}

type readFileOutput struct {
	Path       string `json:"path" jsonschema:"the path, relative to /workspace"`
	Size       int64  `json:"size" jsonschema:"the file's whole size in bytes"`
	MIMEType   string `json:"mime_type" jsonschema:"the content's type"`
	Encoding   string `json:"encoding" jsonschema:"text, base64 (binary data) or image (sent as image content)"`
	Content    string `json:"content,omitempty" jsonschema:"the part read, as text or base64"`
	Offset     int64  `json:"offset" jsonschema:"the byte the part starts at"`
	NextOffset int64  `json:"next_offset,omitempty" jsonschema:"where the next part starts, when the file goes on"`
}

func (s *Server) readFile(ctx context.Context, st *session, in readFileInput) (*mcp.CallToolResult, readFileOutput, error) {
	if in.MaxBytes <= 0 {
		in.MaxBytes = defaultReadBytes
	}
	capped := in.MaxBytes > maxPartBytes
	in.MaxBytes = min(in.MaxBytes, maxPartBytes)
	// Read as much as an image may be, unless the name says the file is
	// of another type; text is cut to MaxBytes below.
	want := int64(maxReadBytes)
	if t := typeByName(in.Path); t != "" && !slices.Contains(imageTypes, t) {
		want = in.MaxBytes
	}
	rc, fi, err := s.svc.ReadFileRange(ctx, in.SandboxID, in.Path, in.Offset, want)
	if cove.ErrorCode(err) == cove.CodeInvalid && s.isDir(ctx, in.SandboxID, in.Path) {
		return nil, readFileOutput{}, s.failHint("read_file", err, "read_file reads files; list_files lists a directory's files")
	}
	if err != nil {
		return nil, readFileOutput{}, err
	}
	defer rc.Close()
	st.use(in.SandboxID)
	if in.Offset > 0 && in.Offset >= fi.Size {
		if fi.Size == 0 {
			return nil, readFileOutput{}, s.invalid("read_file", "offset %d is past the end of %s, which is empty: read it without an offset", in.Offset, fi.Path)
		}
		return nil, readFileOutput{}, s.invalid("read_file", "offset %d is past the end of %s, which has %d bytes (%s): give an offset below %d",
			in.Offset, fi.Path, fi.Size, cove.FormatBytes(fi.Size), fi.Size)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, readFileOutput{}, err
	}
	out := readFileOutput{Path: fi.Path, Size: fi.Size, Offset: in.Offset, MIMEType: contentType(fi.Path, data)}
	if slices.Contains(imageTypes, out.MIMEType) && in.Offset == 0 && int64(len(data)) == fi.Size {
		out.Encoding = "image"
		text := fmt.Sprintf("%s: %s image, %s", fi.Path, out.MIMEType, cove.FormatBytes(fi.Size))
		return &mcp.CallToolResult{Content: []mcp.Content{
			&mcp.TextContent{Text: text},
			&mcp.ImageContent{MIMEType: out.MIMEType, Data: data},
		}}, out, nil
	}
	if int64(len(data)) > in.MaxBytes {
		data = data[:in.MaxBytes]
	}
	// An offset inside a character of a text starts the part at the
	// next character, rather than making the part binary.
	if skip := partialRune(data, in.Offset); skip > 0 {
		if _, ok := asText(data[skip:], in.Offset+int64(len(data)) < fi.Size); ok {
			data = data[skip:]
			out.Offset += int64(skip)
		}
	}
	if end := out.Offset + int64(len(data)); end < fi.Size {
		out.NextOffset = end
	}
	if text, ok := asText(data, out.NextOffset != 0); ok {
		out.Encoding, out.Content = "text", text
		if out.NextOffset != 0 {
			// The part ends at a character's boundary, and at the end
			// of its last whole line when it has one, so that no line
			// is split between parts.
			if nl := strings.LastIndexByte(text, '\n'); nl >= 0 {
				text = text[:nl+1]
			}
			out.Content = text
			data = data[:len(text)]
			out.NextOffset = out.Offset + int64(len(text))
		}
	} else {
		out.Encoding, out.Content = "base64", base64.StdEncoding.EncodeToString(data)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s, %s", fi.Path, cove.FormatBytes(fi.Size), out.MIMEType)
	if out.Encoding == "base64" {
		if slices.Contains(imageTypes, out.MIMEType) && in.Offset == 0 && fi.Size > maxReadBytes {
			fmt.Fprintf(&b, ", too large to come back as an image (more than %s)", cove.FormatBytes(maxReadBytes))
		}
		b.WriteString(", binary: base64 below")
	}
	if out.Offset > 0 || out.NextOffset != 0 {
		fmt.Fprintf(&b, ", bytes %d to %d", out.Offset, out.Offset+int64(len(data)))
	}
	b.WriteString(")\n")
	b.WriteString(out.Content)
	if out.NextOffset != 0 {
		fmt.Fprintf(&b, "\n[... the file goes on: read_file with offset %d reads the next part", out.NextOffset)
		if capped {
			fmt.Fprintf(&b, " (at most %s a call; exec_command with grep, head or tail finds a place in a long file)", cove.FormatBytes(maxPartBytes))
		}
		b.WriteString("]")
	}
	return textResult(b.String()), out, nil
}

// isDir reports whether p is a directory of the sandbox's workspace, to
// give an error about it a hint that fits.
func (s *Server) isDir(ctx context.Context, sandboxID, p string) bool {
	_, err := s.svc.ListFiles(ctx, sandboxID, p, false)
	return err == nil
}

// contentType guesses a file's type from its name, then its content.
func contentType(name string, data []byte) string {
	if t := typeByName(name); t != "" {
		return t
	}
	t, _, _ := strings.Cut(http.DetectContentType(data), ";")
	return t
}

// typeByName is a file's type from its name's extension, or "" when the
// name does not tell.
func typeByName(name string) string {
	t, _, _ := strings.Cut(mime.TypeByExtension(path.Ext(name)), ";")
	return t
}

// partialRune is how many bytes at the start of data, read from offset
// (not the file's start), continue a character begun before it.
func partialRune(data []byte, offset int64) int {
	if offset == 0 {
		return 0
	}
	n := 0
	for n < len(data) && n < utf8.UTFMax-1 && !utf8.RuneStart(data[n]) {
		n++
	}
	return n
}

// asText returns data as text if it is UTF-8 without NUL bytes. A part
// cut from a longer file may end inside a character, which is dropped.
func asText(data []byte, cut bool) (string, bool) {
	if cut {
		for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
			if utf8.RuneStart(data[i]) {
				if !utf8.FullRune(data[i:]) {
					data = data[:i]
				}
				break
			}
		}
	}
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return "", false
	}
	return string(data), true
}

type deleteFileInput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox to delete in"`
	Path      string `json:"path" jsonschema:"the file or directory, relative to /workspace"`
	Recursive bool   `json:"recursive,omitempty" jsonschema:"delete a directory with everything in it"`
}

func (s *Server) deleteFile(ctx context.Context, st *session, in deleteFileInput) (*mcp.CallToolResult, deletedOutput, error) {
	err := s.svc.DeleteFile(ctx, in.SandboxID, in.Path, in.Recursive)
	if cove.ErrorCode(err) == cove.CodeConflict && !in.Recursive && s.isDir(ctx, in.SandboxID, in.Path) {
		return nil, deletedOutput{}, s.failHint("delete_file", err, "the directory is not empty: delete_file with recursive: true deletes it with everything in it (list_files shows what that is), or delete its contents first")
	}
	if err != nil {
		return nil, deletedOutput{}, err
	}
	st.use(in.SandboxID)
	return textResult(fmt.Sprintf("deleted %s in sandbox %s", in.Path, in.SandboxID)), deletedOutput{Deleted: in.Path}, nil
}
