package mcpserver

import (
	"cmp"
	"context"
	"io"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

// fileTemplate is the URI template of sandbox files. The path is a
// reserved expansion ({+path}) so that it may hold slashes.
const fileTemplate = "cove://sandboxes/{id}/files/{+path}"

// Bounds of resources.
const (
	maxResources     = 1000
	maxResourceBytes = 8 << 20
)

func (s *Server) addResources() {
	s.mcp.AddResourceTemplate(&mcp.ResourceTemplate{
		Name:        "sandbox-file",
		Title:       "A file in a sandbox",
		URITemplate: fileTemplate,
		Description: "A file in sandbox {id}'s workspace; {path} is relative to /workspace. Text files read as text, others as binary (up to 8 MiB).",
	}, s.readResource)
	// The resources are the files of the session's sandboxes, which change
	// as the session works: the list is made on each request.
	s.mcp.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if r, ok := req.(*mcp.ListResourcesRequest); ok && method == "resources/list" {
				return s.listResources(callContext(ctx, r.Extra), s.sessionOf(r.Session))
			}
			return next(ctx, method, req)
		}
	})
}

// fileURI is the resource URI of a file of a sandbox.
func fileURI(sandboxID, p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return "cove://sandboxes/" + url.PathEscape(sandboxID) + "/files/" + strings.Join(segs, "/")
}

// parseFileURI returns the sandbox and path of a file's resource URI.
func parseFileURI(uri string) (sandboxID, p string, ok bool) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "cove" || u.Host != "sandboxes" {
		return "", "", false
	}
	sandboxID, p, ok = strings.Cut(strings.TrimPrefix(u.Path, "/"), "/files/")
	if !ok || sandboxID == "" || strings.Contains(sandboxID, "/") || p == "" {
		return "", "", false
	}
	return sandboxID, p, true
}

func (s *Server) listResources(ctx context.Context, st *session) (*mcp.ListResourcesResult, error) {
	res := &mcp.ListResourcesResult{Resources: []*mcp.Resource{}}
	res.CacheScope = "private"
	for _, id := range st.usedSandboxes() {
		fis, err := s.svc.ListFiles(ctx, id, ".", true)
		if err != nil {
			// A sandbox deleted or stopped since has no files to list.
			s.log.Debug("listing a sandbox's files as resources", "sandbox", id, "err", err)
			continue
		}
		for _, fi := range fis {
			if fi.IsDir || fi.Symlink != "" {
				continue
			}
			if dir, _ := collapsedDirOf(fi); dir != "" {
				// Dependencies and caches would fill the list (as in
				// list_files); the resource template still reads them.
				continue
			}
			if len(res.Resources) == maxResources {
				return res, nil
			}
			res.Resources = append(res.Resources, &mcp.Resource{
				URI:      fileURI(id, fi.Path),
				Name:     fi.Path,
				Title:    fi.Path + " in sandbox " + id,
				MIMEType: cmp.Or(typeByName(fi.Path), "application/octet-stream"),
				Size:     fi.Size,
			})
		}
	}
	return res, nil
}

func (s *Server) readResource(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	id, p, ok := parseFileURI(uri)
	if !ok {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	ctx = callContext(ctx, req.Extra)
	rc, fi, err := s.svc.ReadFile(ctx, id, p)
	if cove.ErrorCode(err) == cove.CodeNotFound {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	if err != nil {
		return nil, s.fail("resources/read", err)
	}
	defer rc.Close()
	if fi.Size > maxResourceBytes {
		return nil, s.fail("resources/read", cove.Errorf(cove.CodeInvalid, "%s is %s, more than the %s a resource may be: read it in parts with the read_file tool", p, cove.FormatBytes(fi.Size), cove.FormatBytes(maxResourceBytes)))
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxResourceBytes))
	if err != nil {
		return nil, s.fail("resources/read", err)
	}
	c := &mcp.ResourceContents{URI: uri, MIMEType: contentType(p, data)}
	if text, ok := asText(data, false); ok {
		c.Text = text
	} else {
		c.Blob = data
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{c}}, nil
}
