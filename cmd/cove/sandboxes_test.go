package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func TestSandboxLifecycle(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)

	var createdWire wire.Sandbox
	out := c.ok("create", "--json", "--lang", "python", "--memory", "256M", "--cpus", "0.5", "--pids", "64",
		"--env", "GREETING=hi", "--label", "team=ml", "--label", "tier=gold", "--idle-timeout", "10m", "--ttl", "1h")
	if err := json.Unmarshal([]byte(out), &createdWire); err != nil {
		t.Fatalf("create --json: %v\n%s", err, out)
	}
	// The CLI prints what the API answers: memory in MiB.
	if createdWire.Limits.MemoryMB != 256 {
		t.Fatalf("create --json limits: %+v\n%s", createdWire.Limits, out)
	}
	created, err := createdWire.Cove()
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.State != cove.StateRunning || created.Language != "python" ||
		created.Limits.MemoryBytes != 256<<20 || created.Limits.CPUs != 0.5 || created.Limits.Pids != 64 ||
		created.Env["GREETING"] != "hi" || created.Labels["team"] != "ml" || created.IdleTimeout != 10*time.Minute ||
		created.TTL != time.Hour || created.ExpiresAt.IsZero() {
		t.Fatalf("create --json gave %+v", created)
	}
	a := created.ID
	b := c.create("--lang", "bash", "--label", "team=web")
	if got := c.ok("exec", a, "--", "sh", "-c", "echo $GREETING"); got != "hi\n" {
		t.Fatalf("the sandbox's env: %q", got)
	}

	t.Run("ls_table", func(t *testing.T) {
		got := c.ok("ls")
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[1], b) || !strings.HasPrefix(lines[2], a) {
			t.Fatalf("want the two sandboxes, newest first:\n%s", got)
		}
		golden(t, "ls.txt", stabilize(got, a, b))
	})

	t.Run("ls_json", func(t *testing.T) {
		var list wire.SandboxList
		if err := json.Unmarshal([]byte(c.ok("ls", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Sandboxes) != 2 || list.Sandboxes[0].ID != b || list.Sandboxes[1].ID != a {
			t.Fatalf("ls --json: %+v", list)
		}
	})

	t.Run("ls_filters", func(t *testing.T) {
		if got := ids(t, c, "ls", "--json", "--label", "team=ml"); !slices.Equal(got, []string{a}) {
			t.Fatalf("--label team=ml: %v", got)
		}
		if got := ids(t, c, "ls", "--json", "--label", "team=ml", "--label", "tier=bronze"); len(got) != 0 {
			t.Fatalf("two labels must both match: %v", got)
		}
		if got := ids(t, c, "ls", "--json", "--state", "stopped"); len(got) != 0 {
			t.Fatalf("--state stopped: %v", got)
		}
	})

	t.Run("ls_pages", func(t *testing.T) {
		r := c.do("", "ls", "--limit", "1")
		if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stderr, "add --all") {
			t.Fatalf("one page: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		if got := ids(t, c, "ls", "--json", "--limit", "1", "--all"); !slices.Equal(got, []string{b, a}) {
			t.Fatalf("--all followed the pages to %v", got)
		}
	})

	t.Run("update", func(t *testing.T) {
		out := c.ok("update", a, "--ttl", "2h", "--label", "stage=done", "--remove-label", "tier")
		if !regexp.MustCompile(`^` + a + `: expires in 2h \(at \d{4}-\d\d-\d\d \d\d:\d\d\); labels stage=done,team=ml\n$`).MatchString(out) {
			t.Fatalf("update printed %q", out)
		}
		var sb wire.Sandbox
		if err := json.Unmarshal([]byte(c.ok("update", a, "--no-ttl", "--json")), &sb); err != nil {
			t.Fatal(err)
		}
		if !sb.ExpiresAt.IsZero() || sb.Labels["stage"] != "done" || sb.Labels["tier"] != "" {
			t.Fatalf("update --no-ttl --json: %+v", sb)
		}
		if got := c.ok("update", a, "--ttl", "90m", "--label", "tier=gold", "--remove-label", "stage"); !strings.Contains(got, "expires in 1h30m (at") {
			t.Fatalf("update printed %q", got)
		}
		c.fails(cove.CodeInvalid, `^cove: nothing to change: give --ttl, --no-ttl, --label or --remove-label\n$`, "update", a)
		c.fails(cove.CodeInvalid, `^cove: --remove-label nosuch: sandbox \w+ has no such label \(it has: team=ml,tier=gold\)\n$`, "update", a, "--remove-label", "nosuch")
		c.fails(cove.CodeInvalid, `^cove: --ttl and --no-ttl contradict each other: give one\n$`, "update", a, "--ttl", "1h", "--no-ttl")
		c.fails(cove.CodeNotFound, `^cove: sandbox "nosuch" not found\n$`, "update", "nosuch", "--ttl", "1h")
	})

	t.Run("stop_start", func(t *testing.T) {
		c.ok("exec", a, "--", "sh", "-c", "echo kept > note.txt")
		if got := c.ok("stop", a); got != a+"\n" {
			t.Fatalf("stop printed %q", got)
		}
		if got := ids(t, c, "ls", "--json", "--state", "stopped"); !slices.Equal(got, []string{a}) {
			t.Fatalf("stopped: %v", got)
		}
		c.fails(cove.CodeConflict, `^cove: .+\n$`, "exec", a, "--", "true")
		var res []batchResult
		if err := json.Unmarshal([]byte(c.ok("start", "--json", a)), &res); err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || !res[0].OK || res[0].ID != a || res[0].Sandbox == nil || res[0].Sandbox.State != string(cove.StateRunning) {
			t.Fatalf("start --json: %+v", res)
		}
		if got := c.ok("files", "cat", a, "note.txt"); got != "kept\n" {
			t.Fatalf("the workspace after a restart holds %q", got)
		}
	})

	t.Run("rm_several", func(t *testing.T) {
		r := c.do("", "rm", a, "nosuch", b)
		if r.code != cove.Codes[cove.CodeNotFound].ExitCode || r.stdout != a+"\n"+b+"\n" || r.stderr != "cove: sandbox \"nosuch\" not found\n" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		if got := ids(t, c, "ls", "--json"); len(got) != 0 {
			t.Fatalf("left: %v", got)
		}
		r = c.do("", "rm", "--json", a)
		var res []batchResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("%v: %q", err, r.stdout)
		}
		if r.code != cove.Codes[cove.CodeNotFound].ExitCode || len(res) != 1 || res[0].OK || res[0].Error == nil || res[0].Error.Code != cove.CodeNotFound {
			t.Fatalf("rm --json of a deleted sandbox: exit %d %+v", r.code, res)
		}
	})
}

// ids runs an ls --json command and returns the ids it lists.
func ids(t *testing.T, c *cli, args ...string) []string {
	t.Helper()
	var list wire.SandboxList
	if err := json.Unmarshal([]byte(c.ok(args...)), &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sb := range list.Sandboxes {
		out = append(out, sb.ID)
	}
	return out
}

func TestKeysAndOwnership(t *testing.T) {
	srv := newServer(t)
	admin := srv.cli(t, srv.admin)

	r := admin.do("", "keys", "create", "--name", "alice", "--max-sandboxes", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "key:  cove_") || !strings.Contains(r.stderr, "not shown again") {
		t.Fatalf("keys create: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	var raw map[string]any
	out := admin.ok("keys", "create", "--json", "--name", "bob", "--max-execs", "2", "--max-memory", "1G")
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "key", "name", "admin", "quota", "created_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("keys create --json lacks %q: %s", k, out)
		}
	}
	var bob wire.NewKey
	json.Unmarshal([]byte(out), &bob)
	if bob.Name != "bob" || bob.Quota.MaxConcurrentExecs != 2 || bob.Quota.MaxMemoryMB != 1024 || !strings.HasPrefix(bob.Secret, "cove_") {
		t.Fatalf("keys create --json: %+v", bob)
	}
	var keys wire.KeyList
	if err := json.Unmarshal([]byte(admin.ok("keys", "ls", "--json")), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 3 {
		t.Fatalf("keys ls --json: %d keys, in the API's shape {\"keys\": [...]}", len(keys.Keys))
	}
	var alice string
	for _, k := range keys.Keys {
		if k.Name == "alice" {
			alice = k.ID
		}
	}

	t.Run("ownership", func(t *testing.T) {
		b := srv.cli(t, bob.Secret)
		id := b.create()
		if got := ids(t, admin, "ls", "--json"); !slices.Contains(got, id) {
			t.Fatalf("the admin does not see bob's sandbox: %v", got)
		}
		a := srv.cli(t, secretOf(t, r.stdout))
		a.fails(cove.CodeNotFound, `^cove: sandbox "`+id+`" not found\n$`, "exec", id, "--", "true")
		if got := ids(t, a, "ls", "--json"); len(got) != 0 {
			t.Fatalf("alice sees %v", got)
		}
		mine := a.create()
		a.fails(cove.CodeQuotaExceeded, `^cove: .+\n$`, "create")
		a.fails(cove.CodeForbidden, `^cove: .+\n$`, "keys", "ls")

		// The admin filters by owner, and its table says whose each
		// sandbox is when it lists several keys'; another key asking for
		// bob's sees none, as if bob had none.
		if got := ids(t, admin, "ls", "--json", "--owner", bob.ID); !slices.Equal(got, []string{id}) {
			t.Fatalf("the admin's ls --owner bob: %v", got)
		}
		table := admin.ok("ls")
		if lines := strings.Split(table, "\n"); !strings.HasSuffix(strings.TrimSpace(lines[0]), "OWNER") ||
			!strings.Contains(table, id) || !strings.Contains(table, mine) || !strings.Contains(table, bob.ID) || !strings.Contains(table, alice) {
			t.Fatalf("the admin's table of several keys' sandboxes:\n%s", table)
		}
		if got := admin.ok("ls", "--owner", alice); strings.Contains(got, "OWNER") || !strings.Contains(got, mine) || strings.Contains(got, id) {
			t.Fatalf("the admin's table of alice's sandboxes:\n%s", got)
		}
		// An owner that is no key is a slip, said as one.
		admin.fails(cove.CodeInvalid, `^cove: owner "nobody": no key has that id`, "ls", "--owner", "nobody")
		if got := ids(t, a, "ls", "--json", "--owner", bob.ID); len(got) != 0 {
			t.Fatalf("alice's ls --owner bob: %v", got)
		}
		if got := ids(t, a, "ls", "--json", "--owner", alice); !slices.Equal(got, []string{mine}) {
			t.Fatalf("alice's ls --owner alice: %v", got)
		}
	})

	t.Run("ls_table", func(t *testing.T) {
		admin.ok("keys", "revoke", alice)
		got := admin.ok("keys", "ls")
		golden(t, "keys_ls.txt", stabilize(got, alice, bob.ID))
	})

	t.Run("revoked", func(t *testing.T) {
		srv.cli(t, secretOf(t, r.stdout)).fails(cove.CodeUnauthorized, `^cove: .*revoked`, "ls")
		admin.fails(cove.CodeNotFound, `^cove: .+\n$`, "keys", "revoke", "key_nosuch")
	})
}

// secretOf finds the key in the human output of keys create.
func secretOf(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if k, ok := strings.CutPrefix(l, "key:"); ok {
			return strings.TrimSpace(k)
		}
	}
	t.Fatalf("no key in %q", out)
	return ""
}
