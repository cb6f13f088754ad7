package httpapi

import (
	"mime"
	"net/http"
	"strings"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// analyze serves POST /v1/ai/{action}: the answer streams as server-sent
// events (the default, for browsers) or NDJSON, one wire.AIEvent each;
// a client that asks for application/json only gets the result alone
// once the analysis ends.
func (s *server) analyze(w http.ResponseWriter, r *http.Request) error {
	var req wire.AIRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	ar, err := req.Request(r.PathValue("action"))
	if err != nil {
		return err
	}
	st, err := s.svc.Analyze(r.Context(), ar)
	if err != nil {
		return err
	}
	if st == nil {
		return cove.Errorf(cove.CodeInternal, "the service gave no analysis stream")
	}
	kind := streamKind(r)
	if kind == "" && wantsJSONOnly(r) {
		res, err := cove.CollectAI(st)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, wire.AIResultFrom(res))
		return nil
	}
	if kind == "" {
		kind = mediaSSE
	}
	s.writeAIStream(w, r, st, kind)
	return nil
}

// wantsJSONOnly reports whether the Accept header names application/json
// and no stream.
func wantsJSONOnly(r *http.Request) bool {
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && params["q"] != "0" && mt == "application/json" {
			return true
		}
	}
	return false
}

// writeAIStream writes an analysis's events as they come, flushing each,
// and ends with an error event if the analysis fails. A client that goes
// away cancels the request's context, and with it the analysis.
func (s *server) writeAIStream(w http.ResponseWriter, r *http.Request, st cove.AIStream, kind string) {
	writeEvents(s, w, r, st, kind, func(ev cove.AIEvent) (string, any) { return string(ev.Type), wire.AIEventFrom(ev) })
}
