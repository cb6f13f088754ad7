package wire

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/cove-sandbox/cove"
)

// ListQuery returns the query of GET /v1/sandboxes for opts: label=k=v
// (repeated), state, owner, limit and page_token.
func ListQuery(opts cove.ListOptions) url.Values {
	q := url.Values{}
	for k, v := range opts.Labels {
		q.Add("label", k+"="+v)
	}
	if opts.State != "" {
		q.Set("state", string(opts.State))
	}
	if opts.Owner != "" {
		q.Set("owner", opts.Owner)
	}
	if opts.Limit != 0 { // a bad one too, for the server to refuse
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.PageToken != "" {
		q.Set("page_token", opts.PageToken)
	}
	return q
}

// ParseListQuery reverses ListQuery. Errors: invalid.
func ParseListQuery(q url.Values) (cove.ListOptions, error) {
	opts := cove.ListOptions{State: cove.SandboxState(q.Get("state")), Owner: q.Get("owner"), PageToken: q.Get("page_token")}
	var err error
	if opts.Limit, err = queryInt(q, "limit"); err != nil {
		return opts, err
	}
	for _, l := range q["label"] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return opts, cove.Errorf(cove.CodeInvalid, "invalid label filter %q: use label=key=value", cove.Excerpt(l, 64))
		}
		if opts.Labels == nil {
			opts.Labels = map[string]string{}
		}
		opts.Labels[k] = v
	}
	return opts, nil
}

// PTYQuery returns the query of GET .../pty for req: cols, rows, cmd
// (repeated: the argv), cwd and env (repeated NAME=value).
func PTYQuery(req cove.PTYRequest) url.Values {
	q := url.Values{}
	if req.Cols > 0 {
		q.Set("cols", strconv.Itoa(req.Cols))
	}
	if req.Rows > 0 {
		q.Set("rows", strconv.Itoa(req.Rows))
	}
	for _, c := range req.Cmd {
		q.Add("cmd", c)
	}
	if req.Cwd != "" {
		q.Set("cwd", req.Cwd)
	}
	for k, v := range req.Env {
		q.Add("env", k+"="+v)
	}
	return q
}

// ParsePTYQuery reverses PTYQuery. Errors: invalid.
func ParsePTYQuery(q url.Values) (cove.PTYRequest, error) {
	req := cove.PTYRequest{Cmd: q["cmd"], Cwd: q.Get("cwd")}
	var err error
	if req.Cols, err = queryInt(q, "cols"); err != nil {
		return req, err
	}
	if req.Rows, err = queryInt(q, "rows"); err != nil {
		return req, err
	}
	for _, kv := range q["env"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return req, cove.Errorf(cove.CodeInvalid, "invalid env=%q: use env=NAME=value", cove.Excerpt(kv, 64))
		}
		if req.Env == nil {
			req.Env = map[string]string{}
		}
		req.Env[k] = v
	}
	return req, nil
}

func queryInt(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, cove.Errorf(cove.CodeInvalid, "invalid %s=%q: use a non-negative integer", name, cove.Excerpt(v, 64))
	}
	return n, nil
}
