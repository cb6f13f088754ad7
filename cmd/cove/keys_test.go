package main

import (
	"regexp"
	"testing"

	"github.com/cove-sandbox/cove"
)

// TestKeysRevokeSays checks that cove keys revoke says what it did: a
// revoked key, or one revoked already (still success: revoking is
// idempotent), and a key that does not exist is not found.
func TestKeysRevokeSays(t *testing.T) {
	srv := newServer(t)
	admin := srv.cli(t, srv.admin)
	id := regexp.MustCompile(`(?m)^id: +(\S+)$`).FindStringSubmatch(admin.ok("keys", "create", "--name", "ci"))
	if id == nil {
		t.Fatal("keys create printed no id")
	}
	if got, want := admin.ok("keys", "revoke", id[1]), "revoked key "+id[1]+"\n"; got != want {
		t.Fatalf("revoke printed %q, want %q", got, want)
	}
	again := admin.ok("keys", "revoke", id[1])
	if !regexp.MustCompile(`^key ` + regexp.QuoteMeta(id[1]) + ` was already revoked, on \d{4}-\d\d-\d\d \d\d:\d\d\n$`).MatchString(again) {
		t.Fatalf("revoking again printed %q, want it to say the key was already revoked", again)
	}
	admin.fails(cove.CodeNotFound, `^cove: .*not found\n$`, "keys", "revoke", "key_nosuch")
}
