// Package bundle builds the web UI's sources (web/) into the files that
// internal/webui embeds (internal/webui/dist): a minified ES module bundle
// split into chunks loaded on demand, its CSS, index.html naming them,
// gzipped copies, and a hash of the sources, so that a test can tell a
// committed bundle that no longer matches its sources.
package bundle

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// HashFile is the name, in the output directory, of the file that holds
// the hash of the sources the bundle was built from.
const HashFile = "source.sha256"

// Options say where the sources are and where the bundle goes.
type Options struct {
	// WebDir holds package.json, package-lock.json, index.html, src/ and,
	// after npm ci, node_modules/.
	WebDir string
	// OutDir receives the bundle; files it held before are removed.
	OutDir string
	// BundleDir is this package's directory, whose code is part of the
	// source hash (a change to how the bundle is built changes it).
	BundleDir string
}

// Build bundles the sources and writes the output directory. It returns
// the files written with their sizes, raw and gzipped.
func Build(opts Options) ([]File, error) {
	web, err := filepath.Abs(opts.WebDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(web, "node_modules")); err != nil {
		return nil, fmt.Errorf("no node_modules in %s: run npm ci there first (make ui does)", web)
	}
	out, err := filepath.Abs(opts.OutDir)
	if err != nil {
		return nil, err
	}
	res := api.Build(api.BuildOptions{
		AbsWorkingDir:     web,
		EntryPoints:       []string{"src/main.ts"},
		Bundle:            true,
		Splitting:         true,
		Format:            api.FormatESModule,
		Platform:          api.PlatformBrowser,
		Target:            api.ES2022,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		LegalComments:     api.LegalCommentsNone,
		Outdir:            filepath.Join(web, "out"),
		EntryNames:        "assets/[name]-[hash]",
		ChunkNames:        "assets/chunk-[hash]",
		AssetNames:        "assets/[name]-[hash]",
		Loader:            map[string]api.Loader{".svg": api.LoaderFile, ".woff2": api.LoaderFile},
		Charset:           api.CharsetUTF8,
		Write:             false,
		LogLevel:          api.LogLevelWarning,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, fmt.Errorf("bundling failed:\n%s", strings.Join(msgs, ""))
	}
	files := map[string][]byte{}
	var js, css string
	for _, f := range res.OutputFiles {
		rel, err := filepath.Rel(filepath.Join(web, "out"), f.Path)
		if err != nil {
			return nil, err
		}
		rel = filepath.ToSlash(rel)
		files[rel] = f.Contents
		switch base := filepath.Base(rel); {
		case strings.HasPrefix(base, "main-") && strings.HasSuffix(base, ".js"):
			js = rel
		case strings.HasPrefix(base, "main-") && strings.HasSuffix(base, ".css"):
			css = rel
		}
	}
	if js == "" || css == "" {
		return nil, fmt.Errorf("the bundle has no main script or stylesheet")
	}
	tmpl, err := os.ReadFile(filepath.Join(web, "index.html"))
	if err != nil {
		return nil, err
	}
	index := strings.NewReplacer("{{script}}", "/"+js, "{{style}}", "/"+css).Replace(string(tmpl))
	if strings.Contains(index, "{{") {
		return nil, fmt.Errorf("index.html has a placeholder other than {{script}} and {{style}}")
	}
	files["index.html"] = []byte(index)
	hash, err := SourceHash(web, opts.BundleDir)
	if err != nil {
		return nil, err
	}
	files[HashFile] = []byte(hash + "\n")

	if err := os.RemoveAll(out); err != nil {
		return nil, err
	}
	var written []File
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := files[name]
		f := File{Name: name, Size: len(b), Gzipped: len(b)}
		if err := writeFile(filepath.Join(out, name), b); err != nil {
			return nil, err
		}
		if ext := filepath.Ext(name); ext == ".js" || ext == ".css" || ext == ".svg" {
			gz := Gzip(b)
			if len(gz) < len(b) {
				if err := writeFile(filepath.Join(out, name+".gz"), gz); err != nil {
					return nil, err
				}
				f.Gzipped = len(gz)
			}
		} else if ext == ".html" {
			f.Gzipped = len(Gzip(b))
		}
		written = append(written, f)
	}
	return written, nil
}

// File is one file of the bundle.
type File struct {
	Name    string
	Size    int
	Gzipped int
}

func writeFile(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o644)
}

// Gzip compresses b at the best level. The output depends only on b (no
// name, no time), so rebuilding gives the same bytes.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// SourceHash returns the SHA-256 of what the bundle is built from: the
// files under webDir/src, webDir's index.html, package.json and
// package-lock.json (the exact packages), and the Go files of bundleDir.
func SourceHash(webDir, bundleDir string) (string, error) {
	h := sha256.New()
	add := func(label, path string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", label, len(b))
		h.Write(b)
		return nil
	}
	for _, name := range []string{"index.html", "package.json", "package-lock.json", "tsconfig.json"} {
		if err := add("web/"+name, filepath.Join(webDir, name)); err != nil {
			return "", err
		}
	}
	var srcs []string
	err := filepath.WalkDir(filepath.Join(webDir, "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			srcs = append(srcs, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(srcs)
	for _, p := range srcs {
		rel, _ := filepath.Rel(webDir, p)
		if err := add("web/"+filepath.ToSlash(rel), p); err != nil {
			return "", err
		}
	}
	gos, err := filepath.Glob(filepath.Join(bundleDir, "*.go"))
	if err != nil {
		return "", err
	}
	sort.Strings(gos)
	for _, p := range gos {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		if err := add("bundle/"+filepath.Base(p), p); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
