package httpapi

import (
	"net/http"

	"github.com/cove-sandbox/cove/internal/wire"
)

func (s *server) createKey(w http.ResponseWriter, r *http.Request) error {
	var req wire.KeyRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	spec, err := req.Spec()
	if err != nil {
		return err
	}
	k, err := s.svc.CreateKey(r.Context(), spec)
	if err != nil {
		return err
	}
	// Who may do what changed: the log keeps it (never the secret).
	s.log.Info("key created", "key", k.ID, "name", k.Name, "admin", k.Admin, "by", keyID(r), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusCreated, &wire.NewKey{Key: *wire.KeyFrom(&k.Key), Secret: k.Secret})
	return nil
}

func (s *server) listKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.svc.ListKeys(r.Context())
	if err != nil {
		return err
	}
	out := &wire.KeyList{Keys: make([]*wire.Key, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, wire.KeyFrom(k))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.svc.RevokeKey(r.Context(), id); err != nil {
		return err
	}
	s.log.Info("key revoked", "key", id, "by", keyID(r), "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) whoAmI(w http.ResponseWriter, r *http.Request) error {
	k, err := s.svc.WhoAmI(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.KeyFrom(k))
	return nil
}
