package cove

import (
	"io"
	"time"
)

// FileInfo describes a file or directory of a workspace.
type FileInfo struct {
	// Path is relative to /workspace ("." for the workspace itself).
	Path    string    `json:"path"`
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Mode    uint32    `json:"mode"` // permission bits
	IsDir   bool      `json:"is_dir"`
	Symlink string    `json:"symlink,omitempty"` // target, for a symbolic link
	ModTime time.Time `json:"mod_time"`
}

// FileUpload is one file of Service.UploadFiles.
type FileUpload struct {
	// Path is where the file goes: relative to /workspace, or absolute
	// under it.
	Path string
	// Mode is its permission bits (0: those of the file it replaces, else
	// 0644).
	Mode uint32
	// Body is its content, read to its end before the next file.
	Body io.Reader
}

// SearchRequest finds files by name and/or content.
type SearchRequest struct {
	// Path is the directory to search (default the workspace).
	Path string `json:"path,omitempty"`
	// Name is a glob matched against file names ("*.py").
	Name string `json:"name,omitempty"`
	// Content is a literal string looked for in text files.
	Content string `json:"content,omitempty"`
	// MaxResults caps the matches (default and maximum 1000).
	MaxResults int `json:"max_results,omitempty"`
}

// SearchMatch is a file found by name, or a line found by content.
type SearchMatch struct {
	Path string `json:"path"`
	// Line and Text are set for content matches (Line counts from 1).
	Line int    `json:"line,omitempty"`
	Text string `json:"text,omitempty"`
}

// SearchResult holds the matches; Truncated is set when MaxResults cut it.
type SearchResult struct {
	Matches   []SearchMatch `json:"matches"`
	Truncated bool          `json:"truncated"`
}

// ReplaceRequest replaces every occurrence of Old by New in Paths.
type ReplaceRequest struct {
	Paths []string `json:"paths"`
	Old   string   `json:"old"`
	New   string   `json:"new"`
}

// ReplaceResult says how many replacements one file got.
type ReplaceResult struct {
	Path         string `json:"path"`
	Replacements int    `json:"replacements"`
}
