package httpapi

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/cove-sandbox/cove"
)

// checkCleanPath refuses a request whose URL path is not clean (an empty
// segment, "." or ".."). ServeMux would answer it with a redirect to the
// cleaned path, which a client either does not follow (an empty answer) or
// follows to another place than it meant: files//workspace/a.txt would
// become files/workspace/a.txt, and files/../x would become a route that
// does not exist. The error names the path and how to write it.
func checkCleanPath(r *http.Request) error {
	p := r.URL.EscapedPath()
	clean := cleanURLPath(p)
	if clean == p {
		return nil
	}
	if id, file, ok := filesRoute(p); ok {
		return uncleanFilePath(id, file)
	}
	return invalid("the path %q is not clean: write it as %q", cove.Excerpt(p, 64), cove.Excerpt(clean, 64))
}

// cleanURLPath cleans a URL path as ServeMux does: a leading slash,
// path.Clean, and a trailing slash kept.
func cleanURLPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// filesRoute splits a path of the files routes, /v1/sandboxes/{id}/files/{path},
// into the sandbox id and the file path (unescaped), when the sandbox id
// itself is fine.
func filesRoute(p string) (id, file string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/v1/sandboxes/")
	if !ok {
		return "", "", false
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || parts[1] != "files" || parts[0] == "" || parts[0] == "." || parts[0] == ".." {
		return "", "", false
	}
	file, err := url.PathUnescape(parts[2])
	if err != nil {
		file = parts[2]
	}
	return parts[0], file, true
}

// uncleanFilePath explains how to write a file path that is not clean.
func uncleanFilePath(id, file string) error {
	clean := path.Clean(file)
	if strings.HasSuffix(file, "/") && clean != "/" && clean != "." {
		clean += "/"
	}
	switch {
	case strings.HasPrefix(file, "/"):
		// files//workspace/a.txt: an absolute path whose slash is a
		// separator of the URL.
		return invalid("the file path %q is not clean: an absolute path's leading slash goes into the URL as %%2F (/v1/sandboxes/%s/files/%%2F%s), or give the path relative to the workspace",
			cove.Excerpt(file, 64), cove.Excerpt(id, 64), cove.Excerpt(strings.TrimPrefix(escapeFilePath(clean), "/"), 64))
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return invalid("the file path %q leaves the workspace: give a path inside it, relative to the workspace", cove.Excerpt(file, 64))
	case clean == "." || clean == "./":
		return invalid("the file path %q is not clean: leave it out (/v1/sandboxes/%s/files/) for the workspace itself", cove.Excerpt(file, 64), cove.Excerpt(id, 64))
	}
	return invalid("the file path %q is not clean: write it as %q", cove.Excerpt(file, 64), cove.Excerpt(clean, 64))
}

// escapeFilePath escapes each segment of a file path for a URL.
func escapeFilePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
