package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// ptyReadLimit bounds one WebSocket message from a terminal's client.
const ptyReadLimit = 1 << 20

// pty answers GET .../pty: it starts the program on a terminal and then
// upgrades to a WebSocket. Binary messages carry terminal bytes both ways;
// text messages are wire.PTYMessage controls. When the program exits the
// server sends an exit message and closes normally; when the client goes
// away the program is killed.
func (s *server) pty(w http.ResponseWriter, r *http.Request) error {
	if !isWebSocket(r) {
		return statusError(http.StatusUpgradeRequired, cove.Errorf(cove.CodeInvalid, "this route is a WebSocket: connect with a WebSocket client"))
	}
	if err := s.checkOrigin(r); err != nil {
		return err
	}
	req, err := wire.ParsePTYQuery(r.URL.Query())
	if err != nil {
		return err
	}
	// The terminal starts before the upgrade so that its errors are
	// ordinary HTTP answers.
	p, err := s.svc.OpenPTY(r.Context(), r.PathValue("id"), req)
	if err != nil {
		return err
	}
	// Close once, from whichever of the paths below ends the session.
	closePTY := sync.OnceFunc(func() { p.Close() })
	defer closePTY()
	// The origin was checked above, in the same way.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("terminal upgrade failed", "err", err)
		return nil
	}
	defer conn.CloseNow()
	conn.SetReadLimit(ptyReadLimit)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// Whatever ends the session first ends the program.
	stop := context.AfterFunc(ctx, closePTY)
	defer stop()

	go func() {
		defer cancel()
		inputGone := false
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				// Input that arrives as the program exits has nowhere to
				// go; drop it, and keep the session for the exit result.
				if !inputGone {
					_, err := p.Write(data)
					inputGone = err != nil
				}
				continue
			}
			var m wire.PTYMessage
			if json.Unmarshal(data, &m) == nil && m.Type == wire.PTYResize {
				if err := p.Resize(m.Cols, m.Rows); err != nil {
					s.log.Debug("terminal resize failed", "err", err)
				}
			}
		}
	}()

	// write gives up on a client that takes nothing for the stall timeout.
	write := func(typ websocket.MessageType, b []byte) error {
		wctx, cancel := context.WithTimeout(ctx, s.opts.StallTimeout)
		defer cancel()
		return conn.Write(wctx, typ, b)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := p.Read(buf)
		if n > 0 {
			if werr := write(websocket.MessageBinary, buf[:n]); werr != nil {
				return nil // the client went away
			}
		}
		if err != nil {
			break
		}
	}
	msg := wire.PTYMessage{Type: wire.PTYExit}
	res, err := p.Wait()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		msg = wire.PTYMessage{Type: wire.PTYError, Error: s.errorDetail(r, err)}
	} else {
		msg.Result = wire.ResultFrom(res)
	}
	b, _ := json.Marshal(&msg)
	if write(websocket.MessageText, b) == nil {
		conn.Close(websocket.StatusNormalClosure, "the program exited")
	}
	return nil
}

func isWebSocket(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// checkOrigin refuses browser pages of other origins than the API's own
// and those of Options.WebSocketOrigins, as cross-site WebSocket hijacking
// would otherwise be possible where a browser holds the token.
func (s *server) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" {
		if strings.EqualFold(u.Host, r.Host) {
			return nil
		}
		for _, pat := range s.opts.WebSocketOrigins {
			target := u.Host
			if strings.Contains(pat, "://") {
				target = u.Scheme + "://" + u.Host
			}
			if ok, _ := path.Match(strings.ToLower(pat), strings.ToLower(target)); ok {
				return nil
			}
		}
	}
	return cove.Errorf(cove.CodeForbidden, "origin %q may not open a terminal", cove.Excerpt(origin, 64))
}
