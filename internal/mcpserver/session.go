package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

// cleanupTimeout bounds the deletion of one sandbox when a session ends.
const cleanupTimeout = time.Minute

// session is what cove remembers of one MCP session.
type session struct {
	srv *Server

	mu    sync.Mutex
	ended bool
	// owned are the sandboxes the session created.
	owned map[string]*ownedSandbox
	// used are the sandboxes the session created or named, whose files it
	// lists as resources.
	used map[string]bool
	// deleted are the sandboxes the session deleted (delete_sandbox).
	deleted map[string]bool
	// contexts are the contexts run_in_context made, by sandbox and
	// language; contextSandbox maps a context to its sandbox, and
	// contextCtx to a context that acts for the key that made it, without
	// its cancellation, to delete it when the session ends.
	contexts       map[contextKey]string
	contextSandbox map[string]string
	contextCtx     map[string]context.Context
	// scratch is the sandbox run_in_context made for calls that name no
	// sandbox.
	scratch string
	// setup serializes making the scratch sandbox and contexts.
	setup sync.Mutex

	once sync.Once
}

// ownedSandbox is a sandbox a session created.
type ownedSandbox struct {
	keep bool
	// ctx acts for the key that created the sandbox, without its
	// cancellation, so that the sandbox can be deleted after the call.
	ctx context.Context
}

type contextKey struct{ sandbox, language string }

// sessionOf returns the bookkeeping of ss, starting it (and the watch for
// the session's end) on first use.
func (s *Server) sessionOf(ss *mcp.ServerSession) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.sessions[ss]; ok {
		return st
	}
	st := &session{srv: s, owned: map[string]*ownedSandbox{}, used: map[string]bool{}, deleted: map[string]bool{},
		contexts: map[contextKey]string{}, contextSandbox: map[string]string{}, contextCtx: map[string]context.Context{}}
	if s.closed {
		st.ended = true
		return st
	}
	s.sessions[ss] = st
	if ss != nil {
		go func() {
			ss.Wait()
			s.endSession(ss)
		}()
	}
	return st
}

// endSession deletes what session ss created and did not ask to keep,
// once; a second call waits for the first to finish.
func (s *Server) endSession(ss *mcp.ServerSession) {
	s.mu.Lock()
	st := s.sessions[ss]
	s.mu.Unlock()
	if st != nil {
		st.end()
	}
}

// end deletes the session's sandboxes that are not kept, and the
// contexts it made in other sandboxes (kept ones, or ones it did not
// create), so that their interpreters do not outlive the session.
func (st *session) end() {
	st.once.Do(func() {
		st.mu.Lock()
		st.ended = true
		owned := st.owned
		st.owned = map[string]*ownedSandbox{}
		contexts, contextCtx := st.contextSandbox, st.contextCtx
		st.contextSandbox, st.contextCtx = map[string]string{}, map[string]context.Context{}
		st.contexts = map[contextKey]string{}
		st.mu.Unlock()
		var wg sync.WaitGroup
		for id, o := range owned {
			if o.keep {
				continue
			}
			wg.Go(func() { st.srv.deleteOwned(o.ctx, id) })
		}
		for id, sandboxID := range contexts {
			if o, ok := owned[sandboxID]; ok && !o.keep {
				continue // deleted with its sandbox
			}
			wg.Go(func() { st.srv.deleteContext(contextCtx[id], sandboxID, id) })
		}
		wg.Wait()
		st.srv.mu.Lock()
		for ss, s2 := range st.srv.sessions {
			if s2 == st {
				delete(st.srv.sessions, ss)
			}
		}
		st.srv.mu.Unlock()
	})
}

// deleteOwned deletes a sandbox a session created.
func (s *Server) deleteOwned(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	err := s.svc.DeleteSandbox(ctx, id)
	switch cove.ErrorCode(err) {
	case "":
		s.log.Info("deleted a sandbox at the end of its session", "sandbox", id)
	case cove.CodeNotFound:
	default:
		s.log.Warn("deleting a sandbox at the end of its session", "sandbox", id, "err", err)
	}
}

// deleteContext deletes a context a session created.
func (s *Server) deleteContext(ctx context.Context, sandboxID, id string) {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	err := s.svc.DeleteContext(ctx, sandboxID, id)
	switch cove.ErrorCode(err) {
	case "":
		s.log.Info("deleted a context at the end of its session", "sandbox", sandboxID, "context", id)
	case cove.CodeNotFound:
	default:
		s.log.Warn("deleting a context at the end of its session", "sandbox", sandboxID, "context", id, "err", err)
	}
}

// own records a sandbox the session created. When the session has already
// ended (or the server is closing) the sandbox is deleted at once, unless
// kept, and own reports false.
func (st *session) own(ctx context.Context, id string, keep bool) bool {
	st.mu.Lock()
	if !st.ended {
		st.owned[id] = &ownedSandbox{keep: keep, ctx: context.WithoutCancel(ctx)}
		st.used[id] = true
		st.mu.Unlock()
		return true
	}
	st.mu.Unlock()
	if !keep {
		st.srv.deleteOwned(context.WithoutCancel(ctx), id)
	}
	return false
}

// use records that the session worked in a sandbox.
func (st *session) use(id string) {
	if id == "" {
		return
	}
	st.mu.Lock()
	st.used[id] = true
	st.mu.Unlock()
}

// forget drops a deleted sandbox and its contexts.
func (st *session) forget(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.owned, id)
	delete(st.used, id)
	if st.scratch == id {
		st.scratch = ""
	}
	for k, c := range st.contexts {
		if k.sandbox == id {
			delete(st.contexts, k)
			delete(st.contextSandbox, c)
			delete(st.contextCtx, c)
		}
	}
}

// fate says what becomes of a sandbox when the session ends: "deleted
// when this session ends", "kept after this session", or "" for a
// sandbox the session did not create.
func (st *session) fate(id string) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	o, ok := st.owned[id]
	switch {
	case !ok:
		return ""
	case o.keep:
		return "kept after this session"
	default:
		return "deleted when this session ends"
	}
}

// usedSandboxes returns the sandboxes the session worked in, sorted.
func (st *session) usedSandboxes() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	ids := make([]string, 0, len(st.used))
	for id := range st.used {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// deletedSandbox drops a sandbox that delete_sandbox deleted, and
// remembers that it did.
func (st *session) deletedSandbox(id string) {
	st.forget(id)
	st.mu.Lock()
	st.deleted[id] = true
	st.mu.Unlock()
}

// knows reports whether the session worked in a sandbox (used) or deleted
// it (deleted).
func (st *session) knows(id string) (used, deleted bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.used[id], st.deleted[id]
}

// goneHint is the hint of a not_found error of a call that named a
// sandbox the session knew and that no longer exists: that it is gone
// says more than to check the id. Otherwise it is "", the tool's hint.
func (s *Server) goneHint(ctx context.Context, st *session, err error, args json.RawMessage) string {
	if cove.ErrorCode(err) != cove.CodeNotFound {
		return ""
	}
	id := sandboxArgument(args)
	if id == "" {
		return ""
	}
	used, deleted := st.knows(id)
	switch {
	case deleted:
		return fmt.Sprintf("this session deleted sandbox %s (delete_sandbox), with its files; create_sandbox makes a new one", id)
	case !used:
		return ""
	}
	lives := "keep and ttl_seconds say how long it lives"
	if s.opts.InProcess {
		lives = "ttl_seconds says how long it lives, at most until this session ends"
	}
	if cove.ErrorReason(err) == cove.ReasonSandboxGone {
		// The message says why it went, and when.
		return fmt.Sprintf("sandbox %s, which this session worked in, no longer exists, and its files went with it; create_sandbox makes a new one (%s)", id, lives)
	}
	if _, err := s.svc.GetSandbox(ctx, id); cove.ErrorCode(err) != cove.CodeNotFound {
		return "" // the sandbox is there: what is missing is in it
	} else if cove.ErrorReason(err) == cove.ReasonSandboxGone {
		return fmt.Sprintf("sandbox %s, which this session worked in, no longer exists (%s), and its files went with it; create_sandbox makes a new one (%s)", id, cove.ErrorMessage(err), lives)
	}
	return fmt.Sprintf("sandbox %s, which this session worked in, no longer exists: its time to live (ttl_seconds, or the server's) ran out, or it was deleted outside this session, with its files; create_sandbox makes a new one (%s)", id, lives)
}

// sandboxArgument is the sandbox_id of a call's arguments, or "".
func sandboxArgument(args json.RawMessage) string {
	var named struct {
		SandboxID string `json:"sandbox_id"`
	}
	if json.Unmarshal(args, &named) != nil {
		return ""
	}
	return named.SandboxID
}

// stoppedHint is the hint of a conflict that the sandbox named in a
// call's arguments being stopped explains, and "" for other conflicts
// (a file in the way, a process that has exited, a busy context), whose
// message says what is in the way.
func (s *Server) stoppedHint(ctx context.Context, err error, args json.RawMessage) string {
	id := sandboxArgument(args)
	if cove.ErrorCode(err) != cove.CodeConflict || id == "" {
		return ""
	}
	sb, gerr := s.svc.GetSandbox(ctx, id)
	if gerr != nil || sb.State != cove.StateStopped {
		return ""
	}
	return fmt.Sprintf("sandbox %s is stopped (idle, or by a server restart): start_sandbox runs it again with its files, then call the tool again", id)
}
