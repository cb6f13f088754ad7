package main

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/client"
)

// defaultServer is where `cove serve` listens unless told otherwise.
const defaultServer = client.DefaultURL

// serverURL returns the server the commands talk to, and whether the user
// chose one (--server or COVE_URL) rather than falling back to the default.
func (e *env) serverURL() (url string, chosen bool) {
	if e.server != "" {
		return e.server, true
	}
	if u := e.getenv("COVE_URL"); u != "" {
		return u, true
	}
	return defaultServer, false
}

// apiKey returns the key from COVE_API_KEY, else the server's admin key:
// COVE_ADMIN_KEY, which the server takes as its admin key too, else the
// one in the data directory, which only root on the server's machine can
// read.
func (e *env) apiKey(serverURL string) (string, error) {
	if k := strings.TrimSpace(e.getenv("COVE_API_KEY")); k != "" {
		return k, nil
	}
	// The admin key of a server of this machine is sent to no other: a
	// COVE_URL naming a remote server, or one reached in plain HTTP
	// through the network, would get it.
	if !isLoopbackURL(serverURL) {
		return "", cove.Errorf(cove.CodeUnauthorized, "no API key for %s: set COVE_API_KEY (cove keys create prints one); the admin key of a server on this machine (COVE_ADMIN_KEY, admin.key) is sent only to a loopback address", serverURL)
	}
	if k := strings.TrimSpace(e.getenv("COVE_ADMIN_KEY")); k != "" {
		return k, nil
	}
	const none = "no API key: set COVE_API_KEY (cove keys create prints one)"
	if e.cfg.DataDir == "" {
		return "", cove.Errorf(cove.CodeUnauthorized, "%s or run as root next to the server", none)
	}
	path := filepath.Join(e.cfg.DataDir, "admin.key")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, nil
		}
		return "", cove.Errorf(cove.CodeUnauthorized, "%s: the server's admin key file %s is empty", none, path)
	case errors.Is(err, os.ErrPermission):
		return "", cove.Errorf(cove.CodeUnauthorized, "%s, or run as root to use the server's admin key in %s", none, path)
	}
	return "", cove.Errorf(cove.CodeUnauthorized, "%s, or run as root next to the server: there is no admin key in %s (COVE_DATA_DIR names the server's data directory)", none, path)
}

// isLoopbackURL reports whether u names a server on this machine's
// loopback interface (localhost, 127.0.0.0/8, ::1).
func isLoopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := p.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// remoteService returns the service of the cove server chosen by --server,
// COVE_URL or the default address, reached through the SDK.
func (e *env) remoteService(ctx context.Context) (cove.Service, error) {
	url, _ := e.serverURL()
	key, err := e.apiKey(url)
	if err != nil {
		return nil, err
	}
	c, err := client.New(url, key)
	if err != nil {
		return nil, err
	}
	e.dialed = url
	return c, nil
}

// explain turns a failure to reach the server into an error that says
// which server and how to start one; other errors pass unchanged.
func (e *env) explain(err error) error {
	if e.dialed == "" || err == nil {
		return err
	}
	var ue *url.Error
	if !client.IsUnreachable(err) {
		if cove.ErrorCode(err) == cove.CodeUnavailable && errors.As(err, &ue) && !strings.Contains(cove.ErrorMessage(err), ue.Err.Error()) {
			// A connection that failed past dialling (TLS, plain HTTP
			// for HTTPS, a reset): the cause is what to fix.
			return cove.Errorf(cove.CodeUnavailable, "%s: %v", cove.ErrorMessage(err), ue.Err)
		}
		return err
	}
	var cause string
	var oe *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		cause = "connection refused"
	case errors.As(err, &oe) && oe.Err != nil:
		cause = oe.Err.Error()
	default:
		cause = cove.ErrorMessage(err)
	}
	return cove.Errorf(cove.CodeUnavailable, "cannot reach the cove server at %s (%s): start one with `cove serve`, or point --server or COVE_URL at a running one", e.dialed, cause)
}
