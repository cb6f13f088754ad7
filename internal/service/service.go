// Package service implements cove.Service in-process: it validates
// requests, applies defaults, quotas and ownership, keeps the records of
// sandboxes and keys, runs the lifecycle (idle timeouts, TTLs, a warm pool,
// restart recovery, draining), turns code into programs through the
// language registry, and reaches into sandboxes through a runtime
// backend's agent.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/egress"
	"github.com/cove-sandbox/cove/internal/lang"
	"github.com/cove-sandbox/cove/internal/runtime"
	"github.com/cove-sandbox/cove/internal/store"
)

// Options configure a Service.
type Options struct {
	// Defaults are the limits of sandboxes that do not set their own
	// (default cove.DefaultLimits()).
	Defaults cove.Limits
	// Records keeps sandboxes and keys; nil keeps them in memory for the
	// life of the process.
	Records Records
	// IdleTimeout and TTL apply to sandboxes that set none (0: never).
	IdleTimeout time.Duration
	TTL         time.Duration
	// PoolSize is how many idle sandboxes of the default shape are kept
	// ready for CreateSandbox and Run (0: none).
	PoolSize int
	// RunReuse is how many sandboxes of finished one-call runs are kept,
	// reset, for each owner's next runs with the same limits (0: every
	// run gets a new sandbox); RunReuseIdle is how long one is kept
	// unused (default DefaultRunReuseIdle). See runners.
	RunReuse     int
	RunReuseIdle time.Duration
	// ReapInterval is how often idle timeouts and TTLs are checked
	// (default 1s).
	ReapInterval time.Duration
	// Metrics receives the service's metrics (optional).
	Metrics *Metrics
	// Analyzer answers Analyze (optional: without it Analyze answers
	// unavailable).
	Analyzer Analyzer
	// NetworkPrivate are the non-public addresses (the host's loopback,
	// private networks) that sandboxes whose network limit names them may
	// reach through the egress proxy; any other such address is refused.
	NetworkPrivate []netip.Prefix
	// NetworkConns bounds the connections that the egress proxies of all
	// sandboxes serve at once (default: egress.DefaultConns of the open
	// files cove may have).
	NetworkConns int
	Logger       *slog.Logger
}

// Service is the in-process cove.Service.
type Service struct {
	backend  runtime.Backend
	records  Records
	defaults cove.Limits
	opts     Options
	log      *slog.Logger
	metrics  *Metrics

	// ctx ends when the service shuts down; executions derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	live map[string]*sandbox
	// transit holds the sandboxes being started or stopped, with the state
	// they show meanwhile: between a sandbox's record and its live
	// instance, neither tells.
	transit map[string]*transition
	// stops are why each stopped sandbox last stopped, and its contexts
	// then, while this process runs (see stopNote).
	stops map[string]*stopNote
	execs map[string]int // running executions per owner
	// stoppable are the executions that StopExecution can stop, by id.
	stoppable  map[string]*runningExec
	inProgress int // executions and one-call runs in progress (see hold)
	closing    bool
	active     sync.WaitGroup // running executions, for draining

	// admitMu serialises quota checks with the record creation that they
	// admit, so that exactly the quota is admitted under a race.
	admitMu sync.Mutex

	pool    *pool
	runners *runners
	// egressConns bounds the connections of all egress proxies.
	egressConns *egress.Conns
	loop        sync.WaitGroup
	// teardowns are removals of one-call sandboxes still running after
	// their caller got its answer; Close waits for them.
	teardowns sync.WaitGroup
	closed    bool // Close has begun: teardowns run in the foreground
	// prunedAt is when the reaper last forgot old deleted sandboxes.
	prunedAt time.Time
	// persistent says the records outlive the process; when they do not,
	// every sandbox is ephemeral to the runtime.
	persistent bool
}

var _ cove.Service = (*Service)(nil)

// sandbox is a running sandbox.
type sandbox struct {
	id   string
	inst runtime.Instance
	// What never changes after creation, kept here so that requests need
	// not read the record again.
	limits      cove.Limits
	env         map[string]string
	language    string
	idleTimeout time.Duration // 0: none

	// born is when this process made or started the sandbox; with its
	// monotonic reading, the times below measure idleness on a clock
	// that a change of the wall clock (an NTP step, a manual date) does
	// not move: a jump forward would stop every idle sandbox at once,
	// and a jump back would keep them all running for as long.
	born       time.Time
	lastActive atomic.Int64 // unix nanoseconds, for display and the record
	activeAt   atomic.Int64 // nanoseconds from born to the last activity
	checked    atomic.Int64 // nanoseconds from born to the reaper's last busy check; 0: none yet
	inflight   atomic.Int32 // requests in progress

	// ended is cancelled, with the reason as its cause, when the sandbox
	// is stopped or deleted: its executions are killed first, so that
	// their results say why, rather than failing as the agent goes.
	ended context.Context
	end   context.CancelCauseFunc
	// execs counts its executions until their results arrive; idle is
	// closed when it falls to zero while endExecs waits.
	execMu sync.Mutex
	execs  int
	idle   chan struct{}

	// programs are the hex SHA-256 of the program files cove last wrote
	// to the workspace for code runs, by name (see keepUserFiles); the
	// record keeps them too.
	progMu   sync.Mutex
	programs map[string]string

	// contexts are the sandbox's stateful interpreters, by id; they end
	// with the sandbox.
	ctxMu    sync.Mutex
	contexts map[string]*liveContext

	// procTimeouts are the timeouts of background processes that have
	// their own, by pid, so that a process stopped at its timeout is said
	// to be stopped at that one rather than at the sandbox's.
	procTimeouts sync.Map // int → time.Duration
}

// newLive returns sb ready to serve requests, made or started by s now.
func (s *Service) newLive(sb *sandbox) *sandbox {
	sb.born = time.Now()
	sb.ended, sb.end = context.WithCancelCause(context.WithoutCancel(s.ctx))
	sb.touch()
	return sb
}

// execStarted counts an execution of sb until the returned function is
// called, when its result has arrived or its stream is closed.
func (sb *sandbox) execStarted() (finished func()) {
	sb.execMu.Lock()
	sb.execs++
	sb.execMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			sb.execMu.Lock()
			sb.execs--
			if sb.execs == 0 && sb.idle != nil {
				close(sb.idle)
				sb.idle = nil
			}
			sb.execMu.Unlock()
		})
	}
}

// endWait is how long a stop or a deletion waits for the results of the
// executions it killed (the client may be slow to take their output).
const endWait = time.Second

// endExecs kills sb's executions, whose results say they were killed
// because of reason, and waits up to endWait for their results.
func (sb *sandbox) endExecs(reason string) {
	sb.end(errors.New(reason))
	sb.execMu.Lock()
	if sb.execs == 0 {
		sb.execMu.Unlock()
		return
	}
	if sb.idle == nil {
		sb.idle = make(chan struct{})
	}
	idle := sb.idle
	sb.execMu.Unlock()
	t := time.NewTimer(endWait)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

func (sb *sandbox) touch() {
	now := time.Now()
	sb.lastActive.Store(now.UnixNano())
	sb.activeAt.Store(int64(now.Sub(sb.born)))
}

// idleFor is how long the sandbox has been idle at now.
func (sb *sandbox) idleFor(now time.Time) time.Duration {
	return now.Sub(sb.born) - time.Duration(sb.activeAt.Load())
}

// New returns a Service that creates sandboxes with backend. Call Start to
// recover the records of an earlier run and start the background loops,
// and Shutdown when done.
func New(backend runtime.Backend, opts Options) *Service {
	d := opts.Defaults
	if d == (cove.Limits{}) {
		d = cove.DefaultLimits()
	}
	d = d.WithDefaults(cove.DefaultLimits())
	if n, err := cove.NormalizeNetwork(d.Network); err == nil {
		d.Network = n
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	persistent := opts.Records != nil
	if !persistent {
		opts.Records = newMemRecords()
	}
	if opts.ReapInterval <= 0 {
		opts.ReapInterval = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		backend: backend, records: opts.Records, defaults: d, opts: opts,
		log: log.With("component", "service"), metrics: opts.Metrics,
		ctx: ctx, cancel: cancel,
		live: map[string]*sandbox{}, transit: map[string]*transition{}, stops: map[string]*stopNote{}, execs: map[string]int{}, stoppable: map[string]*runningExec{},
		persistent: persistent,
	}
	s.egressConns = egress.NewConns(networkConns(opts.NetworkConns))
	s.pool = newPool(s, opts.PoolSize)
	s.runners = newRunners(opts.RunReuse, opts.RunReuseIdle)
	s.metrics.watchRunners(s.runners)
	s.metrics.countStatesWith(s.stateCounts)
	return s
}

// Defaults returns the limits applied to fields a request leaves unset.
func (s *Service) Defaults() cove.Limits { return s.defaults }

// Start recovers from an earlier run and starts the reaper and the warm
// pool. Sandboxes that were running when the previous cove process ended
// died with it: they come back stopped, with their workspaces, and
// StartSandbox resumes them. Leftovers of sandboxes with no record are
// swept away.
func (s *Service) Start(ctx context.Context) error {
	recs, err := s.allRecords(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Ephemeral {
			// A one-request sandbox whose request died with an earlier
			// run: nobody will ask for it again. The sweep below removes
			// what is left of it.
			if err := s.records.DeleteSandbox(ctx, r.ID, ""); err != nil && cove.ErrorCode(err) != cove.CodeNotFound {
				return err
			}
			s.log.Info("deleted the one-request sandbox of an earlier run", "id", r.ID)
			continue
		}
		// A record in error stays so: a start found its workspace gone
		// (see workspaceLost), which a restart of cove does not mend.
		if r.State == cove.StateRunning {
			// (A clean shutdown stops its sandboxes: this one's cove
			// ended without.)
			if _, err := s.records.UpdateSandbox(ctx, r.ID, func(r *store.SandboxRecord) error {
				r.State = cove.StateStopped
				r.StopReason = "cove ended while it ran"
				return nil
			}); err != nil {
				return err
			}
			s.log.Info("sandbox of an earlier run is now stopped", "id", r.ID)
		}
	}
	if sw, ok := s.backend.(runtime.Sweeper); ok {
		ids, err := s.records.AllSandboxIDs(ctx)
		if err != nil {
			return err
		}
		if err := sw.Sweep(ctx, func(id string) bool { return ids[id] }); err != nil {
			s.log.Warn("sweeping leftovers", "err", err)
		}
	}
	s.loop.Add(1)
	go s.reapLoop()
	s.pool.start()
	return nil
}

// allRecords lists every sandbox record.
func (s *Service) allRecords(ctx context.Context) ([]*store.SandboxRecord, error) {
	return s.listRecords(ctx, store.SandboxFilter{})
}

// listRecords lists every sandbox record that f keeps.
func (s *Service) listRecords(ctx context.Context, f store.SandboxFilter) ([]*store.SandboxRecord, error) {
	var out []*store.SandboxRecord
	token := ""
	for {
		f.Limit, f.PageToken = 100, token
		page, next, err := s.records.ListSandboxes(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" {
			return out, nil
		}
		token = next
	}
}

func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// owner returns the key id that owns what the caller creates, and whether
// the caller may see everything (an admin, or a local call).
func owner(ctx context.Context) (id string, admin bool) {
	k := cove.KeyFrom(ctx)
	if k == nil {
		return "", true
	}
	return k.ID, k.Admin
}

// record returns a sandbox's record if the caller may see it. Another
// key's sandbox is not found in the very words of a missing one, so that
// the answer does not tell whether an id is in use.
func (s *Service) record(ctx context.Context, id string) (*store.SandboxRecord, error) {
	r, err := s.records.GetSandbox(ctx, id)
	missing := cove.ErrorCode(err) == cove.CodeNotFound
	if err != nil && !missing {
		return nil, err
	}
	who, admin := owner(ctx)
	if missing {
		// A sandbox of the caller's that was deleted lately is named as
		// such: after a TTL ended, a bare "not found" reads as a wrong id.
		if d, err := s.records.DeletedSandbox(ctx, id); err == nil && (admin || d.Owner == who) {
			err := cove.Errorf(cove.CodeNotFound, "sandbox %q is gone: %s %s", id, d.Why, agoText(time.Since(d.DeletedAt)))
			err.Reason = cove.ReasonSandboxGone
			return nil, err
		}
	}
	if missing || !admin && r.Owner != who {
		return nil, cove.Errorf(cove.CodeNotFound, "sandbox %q not found", id)
	}
	return r, nil
}

// agoText says how long ago something happened, to the second.
func agoText(d time.Duration) string {
	if d < time.Second {
		return "just now"
	}
	return d.Round(time.Second).String() + " ago"
}

func (s *Service) toSandbox(r *store.SandboxRecord) *cove.Sandbox {
	sb := &cove.Sandbox{
		ID: r.ID, State: r.State, Language: r.Language, Limits: r.Limits, Env: r.Env, Labels: r.Labels,
		Backend: s.backend.Name(), Owner: r.Owner, IdleTimeout: r.IdleTimeout, TTL: r.TTL,
		CreatedAt: r.CreatedAt, LastActiveAt: r.LastActiveAt, ExpiresAt: r.ExpiresAt,
	}
	s.mu.Lock()
	live := s.live[r.ID]
	t := s.transit[r.ID]
	s.mu.Unlock()
	if t != nil {
		sb.State = t.state
	} else if live != nil {
		if t := time.Unix(0, live.lastActive.Load()).UTC(); t.After(sb.LastActiveAt) {
			sb.LastActiveAt = t
		}
		select {
		case <-live.inst.Done():
			sb.State = cove.StateError
		default:
		}
	} else if r.State == cove.StateRunning {
		sb.State = cove.StateError
	}
	return sb
}

// transition is a start or stop in progress (see Service.transit).
type transition struct {
	state cove.SandboxState
	// deleting says the sandbox stops to be deleted, because of why
	// (as remove's note: "its TTL (1h0m0s) ended"; may be empty).
	deleting bool
	why      string
}

// passing shows sandbox id in state until the returned func is called.
func (s *Service) passing(id string, state cove.SandboxState) (done func()) {
	return s.pass(id, &transition{state: state})
}

// pass shows sandbox id in transition t until the returned func is called.
func (s *Service) pass(id string, t *transition) (done func()) {
	s.mu.Lock()
	s.transit[id] = t
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.transit[id] == t {
			delete(s.transit, id)
		}
		s.mu.Unlock()
	}
}

// CreateSandbox implements cove.Service.
func (s *Service) CreateSandbox(ctx context.Context, spec cove.SandboxSpec) (*cove.Sandbox, error) {
	return s.createSandbox(ctx, spec, !s.persistent, false)
}

// createSandbox creates a sandbox; an ephemeral one's workspace is not
// kept if this process dies. With reuse, a reset sandbox of an earlier
// one-call run of the same owner may be handed over (see runners).
func (s *Service) createSandbox(ctx context.Context, spec cove.SandboxSpec, ephemeral, reuse bool) (*cove.Sandbox, error) {
	if err := s.validateSpec(&spec); err != nil {
		return nil, err
	}
	limits := spec.Limits.WithDefaults(s.defaults)
	// The defaults may fill in a limit that a given one must fit (a
	// file size limit over the default disk limit).
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	who, _ := owner(ctx)
	now := time.Now().UTC()
	rec := &store.SandboxRecord{
		Owner: who, State: cove.StateRunning, Language: spec.Language, Limits: limits,
		Env: spec.Env, Labels: spec.Labels, IdleTimeout: spec.IdleTimeout, TTL: spec.TTL,
		CreatedAt: now, LastActiveAt: now, Ephemeral: ephemeral,
	}
	if rec.IdleTimeout == 0 {
		rec.IdleTimeout = s.opts.IdleTimeout
	}
	if rec.TTL == 0 {
		rec.TTL = s.opts.TTL
	}
	if rec.TTL > 0 {
		rec.ExpiresAt = now.Add(rec.TTL)
	}
	var inst runtime.Instance
	if reuse {
		inst = s.runners.take(who, limits)
	}
	kept := inst != nil
	if inst == nil {
		inst = s.pool.take(limits)
	}
	source := sourceOf(kept, inst != nil)
	if inst != nil {
		rec.ID = inst.ID()
	} else {
		rec.ID = newID()
	}
	started := s.passing(rec.ID, cove.StateStarting)
	defer started()
	if err := s.admit(ctx, rec); err != nil {
		if inst != nil {
			inst.Destroy(context.WithoutCancel(ctx))
		}
		return nil, err
	}
	if kept {
		s.runners.hits.Add(1)
	}
	if inst == nil {
		var err error
		start := time.Now()
		inst, err = s.createInstance(ctx, runtime.Spec{ID: rec.ID, Limits: limits, Ephemeral: ephemeral})
		if err != nil {
			s.records.DeleteSandbox(context.WithoutCancel(ctx), rec.ID, "")
			return nil, err
		}
		s.metrics.observeCreate(time.Since(start))
	}
	sb := s.newLive(&sandbox{id: rec.ID, inst: inst, limits: limits, env: spec.Env, language: spec.Language, idleTimeout: rec.IdleTimeout})
	s.mu.Lock()
	s.live[rec.ID] = sb
	s.mu.Unlock()
	s.metrics.sandboxCreated(source)
	started()
	s.log.Debug("sandbox created", "id", rec.ID, "owner", who)
	return s.toSandbox(rec), nil
}

// validateSpec checks spec and gives its language the registry's
// canonical name ("py" and "PYTHON" are python).
func (s *Service) validateSpec(spec *cove.SandboxSpec) error {
	if err := spec.Limits.Validate(); err != nil {
		return err
	}
	network, err := cove.NormalizeNetwork(spec.Limits.Network)
	if err != nil {
		return err
	}
	spec.Limits.Network = network
	if m, host := spec.Limits.MemoryBytes, hostMemory(); host > 0 && m > host {
		return cove.Errorf(cove.CodeInvalid, "a memory limit of %s is more than this machine has (%s): ask for less", cove.FormatBytes(m), cove.FormatBytes(host))
	}
	if c, host := spec.Limits.CPUs, goruntime.NumCPU(); c > float64(host) {
		return cove.Errorf(cove.CodeInvalid, "a CPU limit of %g is more than this machine has (%d %s): ask for at most %d", c, host, plural(host, "CPU", "CPUs"), host)
	}
	if n, most := spec.Limits.OpenFiles, openFilesCeiling(); most > 0 && uint64(n) > most {
		return cove.Errorf(cove.CodeInvalid, "an open-files limit of %d is more than cove may give (its own hard limit is %d): ask for at most that, or start cove with a higher hard limit (ulimit -Hn, or LimitNOFILE= under systemd)", n, most)
	}
	if err := validateEnv(spec.Env); err != nil {
		return err
	}
	if spec.Language != "" {
		l, err := lang.Lookup(spec.Language)
		if err != nil {
			return err
		}
		spec.Language = l.Name
	}
	if err := checkDuration("idle_timeout", spec.IdleTimeout); err != nil {
		return err
	}
	if err := checkDuration("ttl", spec.TTL); err != nil {
		return err
	}
	return validateLabels(spec.Labels)
}

// hostMemory is the machine's memory (MemTotal), or 0 when unknown.
var hostMemory = sync.OnceValue(func() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
})

// openFilesCeiling is the most open files a sandbox can be given: this
// process's hard limit, which its agents inherit and may only lower (the
// native runtime raises it to the kernel's ceiling when it can); 0 when
// unknown.
func openFilesCeiling() uint64 {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	return rl.Max
}

// checkDuration refuses a negative idle_timeout or ttl, naming it.
func checkDuration(name string, d time.Duration) error {
	if d < 0 {
		return cove.Errorf(cove.CodeInvalid, "%s %s must not be negative: leave it out or give a duration such as \"10m\"", name, d)
	}
	return nil
}

// maxLabels is how many labels a sandbox may carry.
const maxLabels = 64

func validateLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return cove.Errorf(cove.CodeInvalid, "%d labels: a sandbox carries up to %d", len(labels), maxLabels)
	}
	for _, k := range sortedKeys(labels) {
		if k == "" || len(k) > 128 || len(labels[k]) > 256 {
			return cove.Errorf(cove.CodeInvalid, "invalid label %q: keys are 1 to 128 characters, values up to 256", k)
		}
		// A filter is key=value: a key with = could never be matched.
		if i := strings.IndexFunc(k, func(r rune) bool { return r == '=' || unicode.IsControl(r) }); i >= 0 {
			return cove.Errorf(cove.CodeInvalid, "invalid label key %q: it may not hold %q (a filter is key=value)", k, k[i:i+1])
		}
	}
	return nil
}

// admit checks the caller's quota and records the sandbox, atomically with
// respect to other admissions.
func (s *Service) admit(ctx context.Context, rec *store.SandboxRecord) error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return cove.Errorf(cove.CodeUnavailable, "cove is shutting down")
	}
	s.admitMu.Lock()
	defer s.admitMu.Unlock()
	if k := cove.KeyFrom(ctx); k != nil && !k.Admin {
		c, err := s.records.CountSandboxes(ctx, k.ID)
		if err != nil {
			return err
		}
		n, mem := c.N, c.MemoryBytes
		// The sandboxes of one-call runs go when the runs end: where
		// theirs would make room, the request may wait for them (and is
		// told to retry); where only sandboxes that stay fill the quota,
		// one must be deleted.
		if q := k.Quota.MaxSandboxes; q > 0 && n+1 > q {
			if n-c.Ephemeral+1 <= q {
				err := cove.Errorf(cove.CodeQuotaExceeded, "quota exceeded: this key may have %d %s and has %d, %d of them for one-call runs in progress: retry when they end", q, plural(q, "sandbox", "sandboxes"), n, c.Ephemeral)
				err.RetryAfter = time.Second
				return err
			}
			return cove.Errorf(cove.CodeQuotaExceeded, "quota exceeded: this key may have %d %s and has %d; delete one first", q, plural(q, "sandbox", "sandboxes"), n)
		}
		if q := k.Quota.MaxMemoryBytes; q > 0 && rec.Limits.MemoryBytes > q {
			// No wait makes room: not a quota to retry against.
			return cove.Errorf(cove.CodeInvalid, "this key may use %s of memory in all, and the new sandbox asks for %s: ask for at most %s of memory",
				cove.FormatBytes(q), cove.FormatBytes(rec.Limits.MemoryBytes), cove.FormatBytes(q))
		}
		if q := k.Quota.MaxMemoryBytes; q > 0 && mem+rec.Limits.MemoryBytes > q {
			// A stopped sandbox counts: starting it again is not admitted
			// anew.
			if mem-c.EphemeralMemoryBytes+rec.Limits.MemoryBytes <= q {
				err := cove.Errorf(cove.CodeQuotaExceeded, "quota exceeded: this key may use %s of memory and its sandboxes have %s, %s of it for one-call runs in progress; the new one asks for %s: retry when they end",
					cove.FormatBytes(q), cove.FormatBytes(mem), cove.FormatBytes(c.EphemeralMemoryBytes), cove.FormatBytes(rec.Limits.MemoryBytes))
				err.RetryAfter = time.Second
				return err
			}
			return cove.Errorf(cove.CodeQuotaExceeded, "quota exceeded: this key may use %s of memory and its sandboxes, running or stopped, have %s; the new one asks for %s: delete one first",
				cove.FormatBytes(q), cove.FormatBytes(mem), cove.FormatBytes(rec.Limits.MemoryBytes))
		}
	}
	return s.records.PutSandbox(ctx, rec)
}

// GetSandbox implements cove.Service.
func (s *Service) GetSandbox(ctx context.Context, id string) (*cove.Sandbox, error) {
	r, err := s.record(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.toSandbox(r), nil
}

// ListSandboxes implements cove.Service.
func (s *Service) ListSandboxes(ctx context.Context, opts cove.ListOptions) (*cove.SandboxList, error) {
	if opts.Limit < 0 {
		return nil, cove.Errorf(cove.CodeInvalid, "limit %d: give how many sandboxes a page holds, up to %d (0 or none for %d)", opts.Limit, store.MaxPageSize, store.MaxPageSize)
	}
	f := store.SandboxFilter{State: opts.State, Labels: opts.Labels, Limit: opts.Limit, PageToken: opts.PageToken}
	who, admin := owner(ctx)
	switch {
	case admin && opts.Owner != "":
		// An id that is no key's (a slip) is said, rather than
		// answered with an empty list as if that key had no sandboxes.
		if opts.Owner != localKey.ID {
			if _, err := s.records.GetKey(ctx, opts.Owner); cove.ErrorCode(err) == cove.CodeNotFound {
				return nil, cove.Errorf(cove.CodeInvalid, "owner %q: no key has that id (GET /v1/keys, cove keys ls, lists them)", cove.Excerpt(opts.Owner, 64))
			} else if err != nil {
				return nil, err
			}
		}
		f.Owner = &opts.Owner
	case !admin && opts.Owner != "" && opts.Owner != who:
		// Another key's sandboxes are not the caller's to see: none match.
		return &cove.SandboxList{Sandboxes: []*cove.Sandbox{}}, nil
	case !admin:
		f.Owner = &who
	}
	switch opts.State {
	case "", cove.StateRunning, cove.StateStopped:
	case cove.StateError, cove.StateStarting, cove.StateStopping:
		// Shown, not stored: a record says running or stopped while the
		// sandbox starts, stops or has died.
		f.State = ""
	default:
		return nil, cove.Errorf(cove.CodeInvalid, "unknown state %q: use running, starting, stopping, stopped or error", opts.State)
	}
	recs, next, err := s.records.ListSandboxes(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &cove.SandboxList{Sandboxes: []*cove.Sandbox{}, NextPageToken: next}
	for _, r := range recs {
		if sb := s.toSandbox(r); opts.State == "" || sb.State == opts.State {
			out.Sandboxes = append(out.Sandboxes, sb)
		}
	}
	return out, nil
}

// UpdateSandbox implements cove.Service.
func (s *Service) UpdateSandbox(ctx context.Context, id string, u cove.SandboxUpdate) (*cove.Sandbox, error) {
	if _, err := s.record(ctx, id); err != nil {
		return nil, err
	}
	if u.TTL != nil && *u.TTL < 0 {
		return nil, cove.Errorf(cove.CodeInvalid, "ttl %s must not be negative: give 0 to remove the time to live, or a duration such as \"10m\"", *u.TTL)
	}
	if err := validateLabels(u.Labels); err != nil {
		return nil, err
	}
	r, err := s.records.UpdateSandbox(ctx, id, func(r *store.SandboxRecord) error {
		// A sandbox being deleted (its TTL ended) keeps going: a new TTL
		// would be answered and lost. remove checks the TTL again in a
		// write of its own, which waits for this one.
		s.mu.Lock()
		t := s.transit[id]
		s.mu.Unlock()
		if t != nil && t.deleting {
			if t.why != "" {
				return cove.Errorf(cove.CodeConflict, "sandbox %s is being deleted: %s", id, t.why)
			}
			return cove.Errorf(cove.CodeConflict, "sandbox %s is being deleted", id)
		}
		if u.Labels != nil {
			r.Labels = u.Labels
		}
		if u.TTL != nil {
			r.TTL = *u.TTL
			r.ExpiresAt = time.Time{}
			if r.TTL > 0 {
				r.ExpiresAt = time.Now().UTC().Add(r.TTL)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.toSandbox(r), nil
}

// StopSandbox implements cove.Service.
func (s *Service) StopSandbox(ctx context.Context, id string) (*cove.Sandbox, error) {
	if _, err := s.record(ctx, id); err != nil {
		return nil, err
	}
	return s.stop(ctx, id, stopRequest, "stopped on request")
}

// stopNote is why a sandbox last stopped, and the ids of the contexts
// that ended with it, kept while this process runs: a call to one of its
// contexts is told that the contexts ended with the sandbox, and why,
// rather than only that the sandbox is stopped or that no such context
// exists. The sandbox's deletion forgets it.
type stopNote struct {
	why      string // "idle for 30m", "stopped on request"
	contexts map[string]bool
}

// stop stops sandbox id, because of why (see stopNote); the metrics count
// it, if it ran, under reason.
func (s *Service) stop(ctx context.Context, id string, reason stopReason, why string) (*cove.Sandbox, error) {
	stopped := s.passing(id, cove.StateStopping)
	defer stopped()
	s.mu.Lock()
	sb := s.live[id]
	delete(s.live, id)
	if sb != nil {
		note := &stopNote{why: why, contexts: map[string]bool{}}
		sb.ctxMu.Lock()
		for cid := range sb.contexts {
			note.contexts[cid] = true
		}
		sb.ctxMu.Unlock()
		s.stops[id] = note
	}
	s.mu.Unlock()
	var last time.Time
	if sb != nil {
		last = time.Unix(0, sb.lastActive.Load()).UTC()
		sb.endExecs("the sandbox was stopped")
		s.metrics.sandboxStopped(reason)
		if err := sb.inst.Stop(context.WithoutCancel(ctx)); err != nil {
			s.log.Error("stopping sandbox", "id", id, "err", err)
		}
	}
	r, err := s.records.UpdateSandbox(ctx, id, func(r *store.SandboxRecord) error {
		r.State = cove.StateStopped
		r.StopReason = why
		if last.After(r.LastActiveAt) {
			r.LastActiveAt = last
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	stopped()
	return s.toSandbox(r), nil
}

// StartSandbox implements cove.Service.
func (s *Service) StartSandbox(ctx context.Context, id string) (*cove.Sandbox, error) {
	r, err := s.record(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	sb := s.live[id]
	s.mu.Unlock()
	if sb != nil {
		select {
		case <-sb.inst.Done():
			// It died: restart it on its workspace.
			s.stop(ctx, id, stopDied, "it had died")
		default:
			return s.toSandbox(r), nil
		}
	}
	started := s.passing(id, cove.StateStarting)
	defer started()
	inst, err := s.createInstance(ctx, runtime.Spec{ID: id, Limits: r.Limits, Resume: true})
	if cove.ErrorCode(err) == cove.CodeNotFound {
		return nil, s.workspaceLost(ctx, id, err)
	}
	if err != nil {
		return nil, err
	}
	sb = s.newLive(&sandbox{id: id, inst: inst, limits: r.Limits, env: r.Env, language: r.Language, idleTimeout: r.IdleTimeout, programs: maps.Clone(r.Programs)})
	s.mu.Lock()
	if other := s.live[id]; other != nil {
		// Started concurrently: keep the first.
		s.mu.Unlock()
		inst.Stop(context.WithoutCancel(ctx))
		return s.toSandbox(r), nil
	}
	s.live[id] = sb
	s.mu.Unlock()
	r, err = s.records.UpdateSandbox(ctx, id, func(r *store.SandboxRecord) error {
		r.State = cove.StateRunning
		r.StopReason = ""
		r.LastActiveAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	started()
	return s.toSandbox(r), nil
}

// workspaceLost answers a start of sandbox id whose workspace the backend
// cannot find (cause): removed from the host while cove was not running,
// or lost with the volume. Nothing can start the sandbox again, so its
// record says error rather than stopped (files kept), and the answer says
// what is left to do. The record stays for its owner to see and delete.
func (s *Service) workspaceLost(ctx context.Context, id string, cause error) error {
	s.log.Warn("the workspace of a stopped sandbox is gone", "id", id, "err", cause)
	if _, err := s.records.UpdateSandbox(context.WithoutCancel(ctx), id, func(r *store.SandboxRecord) error {
		r.State = cove.StateError
		return nil
	}); err != nil && cove.ErrorCode(err) != cove.CodeNotFound {
		s.log.Error("marking a sandbox whose workspace is gone", "id", id, "err", err)
	}
	return &cove.Error{Code: cove.CodeConflict, Err: cause, Message: fmt.Sprintf(
		"sandbox %s cannot start: its workspace is gone from the host (removed or lost while cove was not running), and its files with it; "+
			"delete the sandbox (DELETE /v1/sandboxes/%s, cove rm %s) and create a new one", id, id, id)}
}

// DeleteSandbox implements cove.Service.
func (s *Service) DeleteSandbox(ctx context.Context, id string) error {
	if _, err := s.record(ctx, id); err != nil {
		return err
	}
	return s.remove(ctx, id, deleteRequest, "the sandbox was deleted", "it was deleted on request")
}

// errRenewed stops the deletion of a sandbox whose TTL was renewed after
// the reaper found it expired.
var errRenewed = errors.New("the TTL was renewed")

// remove deletes sandbox id; the executions it kills say they were killed
// because of why, and the metrics count it under reason. A note, when
// given, is kept for a day as what a call naming the sandbox afterwards
// is told ("its TTL (1h0m0s) ended").
func (s *Service) remove(ctx context.Context, id string, reason deleteReason, why, note string) error {
	ctx = context.WithoutCancel(ctx)
	defer s.pass(id, &transition{state: cove.StateStopping, deleting: true, why: note})()
	if reason == deleteTTL {
		// The TTL may have been renewed since the reaper listed the
		// sandbox. Checked in a write, after the sandbox is marked as
		// being deleted: an update either went before (and is seen here)
		// or sees the mark and is refused.
		_, err := s.records.UpdateSandbox(ctx, id, func(r *store.SandboxRecord) error {
			if r.ExpiresAt.IsZero() || r.ExpiresAt.After(time.Now()) {
				return errRenewed
			}
			return nil
		})
		if errors.Is(err, errRenewed) || cove.ErrorCode(err) == cove.CodeNotFound {
			return nil
		}
		if err != nil {
			return err
		}
	}
	s.mu.Lock()
	sb := s.live[id]
	delete(s.live, id)
	delete(s.stops, id)
	s.mu.Unlock()
	if sb != nil {
		sb.endExecs(why)
	}
	err := s.destroy(ctx, id, sb)
	if derr := s.records.DeleteSandbox(ctx, id, note); derr != nil && err == nil {
		err = derr
	} else if derr == nil {
		s.metrics.sandboxDeleted(reason)
	}
	return err
}

// destroy removes what sandbox id holds on the host: all of it when sb,
// its live instance, is given, else its workspace.
func (s *Service) destroy(ctx context.Context, id string, sb *sandbox) error {
	var err error
	if sb != nil {
		err = sb.inst.Destroy(ctx)
	} else {
		err = s.backend.DeleteWorkspace(ctx, id)
	}
	if err != nil {
		s.log.Error("destroying sandbox", "id", id, "err", err)
	}
	return err
}

// removeLater removes a one-call sandbox without making its caller wait
// for the teardown: the record goes at once, so the sandbox no longer
// counts against its owner's quotas, and the processes, cgroups and
// workspace go in the background. Should cove die in between, the next
// start's sweep removes what has no record. When keep is given, it may
// keep the sandbox instead (a reset for reuse), in the background too.
func (s *Service) removeLater(ctx context.Context, id string, keep func(context.Context, *sandbox) bool) {
	ctx = context.WithoutCancel(ctx)
	gone := s.passing(id, cove.StateStopping)
	s.mu.Lock()
	sb := s.live[id]
	delete(s.live, id)
	delete(s.stops, id)
	closed := s.closed
	if !closed {
		s.teardowns.Add(1)
	}
	s.mu.Unlock()
	if err := s.records.DeleteSandbox(ctx, id, ""); err != nil {
		s.log.Error("deleting the record of a one-call sandbox", "id", id, "err", err)
	} else {
		s.metrics.sandboxDeleted(deleteRun)
	}
	gone()
	if closed {
		s.destroy(ctx, id, sb)
		return
	}
	go func() {
		defer s.teardowns.Done()
		if keep != nil && sb != nil && keep(ctx, sb) {
			return
		}
		s.destroy(ctx, id, sb)
	}()
}

// running returns the live sandbox id if the caller may use it, marking a
// request in progress until done is called.
func (s *Service) running(ctx context.Context, id string) (*sandbox, func(), error) {
	r, err := s.record(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	// The request counts from the moment it finds the sandbox live, so
	// that one who takes the sandbox out of s.live (a one-call run's
	// reset) can wait for every request that found it.
	s.mu.Lock()
	sb := s.live[id]
	if sb != nil {
		sb.inflight.Add(1)
	}
	t := s.transit[id]
	s.mu.Unlock()
	if sb == nil {
		switch {
		case t != nil && t.state == cove.StateStarting:
			return nil, nil, cove.Errorf(cove.CodeConflict, "sandbox %s is starting: try again in a moment", id)
		case t != nil && t.deleting && t.why != "":
			return nil, nil, cove.Errorf(cove.CodeConflict, "sandbox %s is being deleted: %s", id, t.why)
		case t != nil && t.deleting:
			return nil, nil, cove.Errorf(cove.CodeConflict, "sandbox %s is being deleted", id)
		case t != nil:
			return nil, nil, cove.Errorf(cove.CodeConflict, "sandbox %s is %s", id, t.state)
		case r.State == cove.StateRunning:
			// Its record is written before it runs, and goes after.
			return nil, nil, cove.Errorf(cove.CodeConflict, "sandbox %s is starting or going away: try again in a moment", id)
		case r.State == cove.StateError:
			return nil, nil, cove.Errorf(cove.CodeConflict, "sandbox %s is not running: it could not start (starting it again says why)", id)
		}
		if why := s.stoppedWhy(id, r); why != "" && r.State == cove.StateStopped {
			return nil, nil, cove.Errorf(cove.CodeConflict, "sandbox %s is stopped (%s): start it first", id, why)
		}
		return nil, nil, cove.Errorf(cove.CodeConflict, "sandbox %s is %s: start it first", id, r.State)
	}
	select {
	case <-sb.inst.Done():
		sb.inflight.Add(-1)
		return nil, nil, cove.Errorf(cove.CodeConflict, "sandbox %s has died: start it again (its files are kept)", id)
	default:
	}
	sb.touch()
	return sb, func() {
		sb.touch()
		sb.inflight.Add(-1)
	}, nil
}

// stoppedWhy says why sandbox id, of record r, last stopped: as this
// process noted it, or as the record keeps it; "" when unknown.
func (s *Service) stoppedWhy(id string, r *store.SandboxRecord) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.stops[id]; n != nil {
		return n.why
	}
	return r.StopReason
}

// Shutdown drains the service: new sandboxes and executions are refused,
// running executions get until ctx ends to finish, then are cancelled, and
// every running sandbox is stopped (its record says stopped, its workspace
// stays).
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		s.active.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
		s.log.Warn("drain deadline passed; cancelling running executions")
	}
	s.cancel()
	// The cancelled executions report their results before their
	// sandboxes go.
	select {
	case <-drained:
	case <-time.After(3 * time.Second):
		s.log.Warn("executions still running after being killed; stopping their sandboxes")
	}
	s.loop.Wait()
	s.pool.close(context.WithoutCancel(ctx))
	s.closeRunners(context.WithoutCancel(ctx))
	// One-call sandboxes still being removed, or reset (which the end of
	// s.ctx cuts short), go before the process does.
	torn := make(chan struct{})
	go func() {
		s.teardowns.Wait()
		close(torn)
	}()
	select {
	case <-torn:
	case <-time.After(10 * time.Second):
		s.log.Warn("one-call sandboxes still being removed; the next start removes what is left")
	}
	s.mu.Lock()
	ids := make([]string, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if _, err := s.stop(context.WithoutCancel(ctx), id, stopShutdown, "cove shut down"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close deletes every sandbox of this service (for the one-shot CLI, whose
// sandboxes do not outlive it) and stops the background loops.
func (s *Service) Close(ctx context.Context) error {
	s.cancel()
	s.loop.Wait()
	s.pool.close(ctx)
	s.mu.Lock()
	s.closed = true
	ids := make([]string, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := s.remove(ctx, id, deleteClosed, "the sandbox was deleted", ""); err != nil {
			errs = append(errs, err)
		}
	}
	s.teardowns.Wait()
	s.closeRunners(ctx)
	return errors.Join(errs...)
}

// Health reports whether the service takes new work: unavailable from the
// moment Shutdown begins, so that a load balancer's health check (GET
// /healthz) sends new requests to another server while the executions in
// progress drain, and while the backend says it cannot make sandboxes
// (such as when the workspaces' file system has gone read-only), so that
// monitoring tells the operator.
func (s *Service) Health(ctx context.Context) error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return cove.Errorf(cove.CodeUnavailable, "cove is shutting down: it lets the executions in progress finish and takes no new work; send it to another server")
	}
	if h, ok := s.backend.(runtime.HealthChecker); ok {
		return h.Health(ctx)
	}
	return nil
}

// Version implements cove.Service.
func (s *Service) Version(ctx context.Context) (*cove.VersionInfo, error) {
	v := &cove.VersionInfo{Version: cove.Version, Backend: s.backend.Name(), Analysis: s.opts.Analyzer != nil && s.opts.Analyzer.Ready()}
	for _, l := range lang.All() {
		v.Languages = append(v.Languages, l.Name)
	}
	return v, nil
}
