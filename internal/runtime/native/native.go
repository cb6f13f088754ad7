// Package native is cove's default backend: sandboxes made of Linux
// namespaces, cgroups, seccomp and Landlock on the local machine, with no
// container engine. The host side here creates the namespaces, cgroups and
// workspace and starts the agent; the agent finishes the isolation from the
// inside (see package agent).
package native

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/cgroups"
	"github.com/cove-sandbox/cove/internal/runtime"
	"github.com/cove-sandbox/cove/internal/seccomp/compiled"
	"github.com/cove-sandbox/cove/internal/volume"
)

// Ids inside every sandbox.
const (
	SandboxUID = 1000
	SandboxGID = 1000
)

// Host id ranges: sandbox slot n maps ids 0..65535 inside to
// uidBase+n*65536 outside. The base sits far above ids that distributions
// hand to users and to subordinate-id ranges.
const (
	uidBase   = 1 << 30
	idsPerBox = 65536
	maxSlots  = 4096
)

// Options configure the native backend.
type Options struct {
	// DataDir holds the workspace volume (required).
	DataDir string
	// RunDir holds locks and mount points (default /run/cove).
	RunDir string
	// SlotsDir registers live sandboxes machine-wide (default
	// /run/cove/slots, whatever RunDir is): every cove process on the
	// machine must use the same one, so that no two sandboxes ever share
	// a host id range.
	SlotsDir string
	// AgentPath is the executable started as each sandbox's agent. By
	// default it is a sealed private copy (see sealedAgent) of AgentBinary,
	// or of the running binary when AgentBinary is nil.
	AgentPath string
	// AgentBinary is the agent to run (cove embeds a small one, see
	// package agentbin), and AgentHash its SHA-256 in hex.
	AgentBinary []byte
	AgentHash   string
	// Landlock enables Landlock where the kernel has it (default on; set
	// DisableLandlock to turn it off).
	DisableLandlock bool
	// Launcher starts agents through a small launcher process instead of
	// from this one. A process in a new user namespace is started with a
	// full fork, whose cost grows with the starting process's memory: worth
	// it for a long-running server, not for a one-shot cove run.
	Launcher bool
	// CgroupRoot overrides /sys/fs/cgroup (tests).
	CgroupRoot string
	Logger     *slog.Logger
}

// Backend is the native backend.
type Backend struct {
	opts  Options
	log   *slog.Logger
	cg    *cgroups.Manager
	vol   *volume.Volume
	slots *slots
	root  string
	// agentBin is the sealed agent binary, started through a descriptor.
	agentBin *os.File
	// etc is the prepared /etc of every sandbox.
	etc string
	// launcher starts the agents (see agent.Launcher).
	launchMu sync.Mutex
	launcher *agent.Launcher
	devNull  *os.File
	// seccomp is every sandbox's filter, compiled once and installed by
	// each agent.
	seccomp []byte
	// stopTrims ends the periodic trim of a server's volume.
	stopTrims chan struct{}
	trims     sync.WaitGroup
	closeOnce sync.Once
}

var _ runtime.Backend = (*Backend)(nil)
var _ runtime.Sweeper = (*Backend)(nil)
var _ runtime.HealthChecker = (*Backend)(nil)
var _ runtime.Listener = (*sandbox)(nil)

// New prepares the host for native sandboxes: cgroups, the workspace volume
// and the run directory. It fails with an unavailable error that names the
// missing piece when the host cannot isolate sandboxes.
func New(ctx context.Context, opts Options) (*Backend, error) {
	if opts.DataDir == "" {
		return nil, cove.Errorf(cove.CodeInvalid, "native runtime: no data directory given")
	}
	if opts.RunDir == "" {
		opts.RunDir = "/run/cove"
	}
	if opts.SlotsDir == "" {
		opts.SlotsDir = "/run/cove/slots"
	}
	parts := opts.Logger // for the parts, which name themselves
	if parts == nil {
		parts = slog.New(slog.DiscardHandler)
	}
	log := parts.With("component", "native")
	if os.Geteuid() != 0 {
		return nil, cove.Errorf(cove.CodeUnavailable, "the native runtime needs root to create namespaces, cgroups and workspaces: run cove as root (sudo cove ...)")
	}
	// The agent builds the sandbox's root on a tmpfs it mounts over /tmp in
	// its own mount namespace: a path every host has, that needs no
	// permission on cove's directories.
	b := &Backend{opts: opts, log: log, root: "/tmp"}
	for _, d := range []string{opts.DataDir, opts.RunDir, opts.SlotsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, cove.Errorf(cove.CodeUnavailable, "creating %s: %w", d, err)
		}
	}
	if opts.AgentPath == "" {
		var path string
		var err error
		if opts.AgentBinary != nil {
			path, err = sealedEmbeddedAgent(filepath.Join(opts.DataDir, "agent"), opts.AgentBinary, opts.AgentHash)
		} else {
			exe, xerr := os.Executable()
			if xerr != nil {
				return nil, cove.Errorf(cove.CodeUnavailable, "finding cove's own binary: %w", xerr)
			}
			path, err = sealedAgent(filepath.Join(opts.DataDir, "agent"), exe)
		}
		if err != nil {
			return nil, cove.Errorf(cove.CodeUnavailable, "making the sealed agent binary: %w", err)
		}
		if b.agentBin, err = os.Open(path); err != nil {
			return nil, cove.Errorf(cove.CodeUnavailable, "opening the sealed agent binary: %w", err)
		}
	}
	b.opts = opts
	var err error
	if b.devNull, err = os.Open(os.DevNull); err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "opening /dev/null: %w", err)
	}
	data, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "data directory %s: %w", opts.DataDir, err)
	}
	b.slots = &slots{dir: opts.SlotsDir, max: maxSlots, data: data}
	b.etc = filepath.Join(opts.RunDir, "etc")
	if err := prepareEtc(b.etc); err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "preparing the sandboxes' /etc: %w", err)
	}
	b.cg, err = cgroups.New(cgroups.Options{Root: opts.CgroupRoot, RunDir: opts.RunDir, Logger: parts})
	if err != nil {
		return nil, err
	}
	if err := raiseOpenFilesCeiling(); err != nil {
		// Creation refuses a larger limit, saying why.
		log.Debug("cannot raise cove's ceiling of open files; sandboxes may have no more than it", "err", err)
	}
	if was, err := raiseFileMax(); err != nil {
		log.Warn("cannot raise the host's bound of open files (fs.file-max): sandboxes that together hold that many open files keep every other unprivileged process of the host from opening one", "err", err)
	} else if was != 0 {
		log.Info("raised the host's bound of open files (fs.file-max) to the kernel's maximum, as systemd does: the memory limit of each sandbox bounds its open files instead", "was", was)
	}
	if n := pidBudget(); n > 0 {
		if err := b.cg.CapPids(n); err != nil {
			log.Warn("cannot bound the processes of all sandboxes together; enough sandboxes at their own limits could take every process id of the host", "limit", n, "err", err)
		}
	}
	// Built ahead of time (see package compiled); clone3 is allowed on v2,
	// where the agent starts children with CLONE_INTO_CGROUP.
	if b.seccomp, err = compiled.Program(b.cg.Version() == cgroups.V2); err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "the seccomp filter: %w", err)
	}
	b.vol, err = volume.Open(ctx, opts.DataDir, volume.Options{Logger: parts})
	if err != nil {
		return nil, err
	}
	if opts.Launcher {
		// A server deletes workspaces all day long.
		b.stopTrims = make(chan struct{})
		b.trims.Add(1)
		go b.trimLoop()
	}
	return b, nil
}

// trimEvery is how often a server trims its workspace volume, giving the
// space of deleted workspaces back to the disk that holds it.
const trimEvery = 10 * time.Minute

// trimLoop trims the volume every trimEvery until Close; a file system
// that cannot trim is said once, and not tried again.
func (b *Backend) trimLoop() {
	defer b.trims.Done()
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-b.stopTrims:
			return
		case <-t.C:
		}
		n, err := b.vol.Trim()
		if err != nil {
			b.log.Warn("cannot trim the workspace volume: the space of deleted workspaces stays in its image until the volume is trimmed (fstrim)", "err", err)
			return
		}
		b.log.Debug("trimmed the workspace volume", "bytes", n)
	}
}

// raiseOpenFilesCeiling raises this process's hard limit of open files to
// the kernel's (fs.nr_open), keeping its soft limit. A sandbox's agent sets
// the sandbox's limit as both, and can only lower what it inherits: without
// this, a limit above the hard limit cove was started with (often 4096 or
// 524288) fails at the agent's boot. syscall.Setrlimit, rather than
// unix's, so that the processes cove starts inherit the new limit: Go
// gives them back the limits of the process's start otherwise.
func raiseOpenFilesCeiling() error {
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return err
	}
	ceiling, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("fs.nr_open: %w", err)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Max >= ceiling {
		return nil
	}
	rl.Max = ceiling
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
}

// fileMaxPath is the host's bound of open files of all processes
// together.
const fileMaxPath = "/proc/sys/fs/file-max"

// raiseFileMax raises fs.file-max to the kernel's maximum, as systemd does
// at boot, when it is lower, and returns the value it had then (0 when it
// was not lower). The kernel's default is about a tenth of the memory in
// KiB; an open file costs about 256 bytes of the opener's memory cgroup,
// so a sandbox allowed a few percent of the host's memory could hold
// them all, and every unprivileged process of the host, other sandboxes
// among them, would fail to open a file (ENFILE). Without the bound, each
// sandbox's memory limit bounds its open files.
func raiseFileMax() (uint64, error) {
	b, err := os.ReadFile(fileMaxPath)
	if err != nil {
		return 0, err
	}
	was, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("fs.file-max: %w", err)
	}
	const most = 1<<63 - 1 // LONG_MAX, the largest the kernel takes
	if was >= most {
		return 0, nil
	}
	if err := os.WriteFile(fileMaxPath, []byte(strconv.FormatUint(most, 10)), 0); err != nil {
		return 0, err
	}
	return was, nil
}

// pidBudget is how many processes and threads all sandboxes together may
// have: three quarters of what the host allows (the lower of pid_max and
// threads-max), so that cove and the host keep the rest. 0 when unknown.
func pidBudget() int {
	n := 0
	for _, f := range []string{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || v <= 0 {
			return 0
		}
		if n == 0 || v < n {
			n = v
		}
	}
	return n / 4 * 3
}

// Name implements runtime.Backend.
func (b *Backend) Name() string { return "native" }

// Health implements runtime.HealthChecker: the workspace volume must be
// writable.
func (b *Backend) Health(ctx context.Context) error { return b.vol.Health() }

// Close implements runtime.Backend.
func (b *Backend) Close() error {
	if b.stopTrims != nil {
		b.closeOnce.Do(func() { close(b.stopTrims) })
		b.trims.Wait()
	}
	b.launchMu.Lock()
	if b.launcher != nil {
		b.launcher.Close()
		b.launcher = nil
	}
	b.launchMu.Unlock()
	if b.agentBin != nil {
		b.agentBin.Close()
	}
	if b.devNull != nil {
		b.devNull.Close()
	}
	return b.vol.Close()
}

// sweepLock is held shared while a sandbox's resources are being created
// and exclusively by Sweep, so a sweep never removes a sandbox that is
// being born.
func (b *Backend) sweepLock(how int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(b.opts.SlotsDir, "sweep.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Create implements runtime.Backend. The agent process starts first; its
// runtime initialises while the host creates the workspace and cgroups, which
// then travel to it with the boot config.
func (b *Backend) Create(ctx context.Context, spec runtime.Spec) (_ runtime.Instance, err error) {
	l := spec.Limits
	t0 := time.Now()
	var tStarted, tResources time.Duration
	lock, err := b.sweepLock(unix.LOCK_SH)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "taking sweep lock: %w", err)
	}
	defer lock.Close()
	sb := &sandbox{id: spec.ID, b: b, exited: make(chan struct{}), stderr: &bytes.Buffer{}}
	defer func() {
		if err != nil {
			// A resumed sandbox's workspace holds the user's files: keep it.
			sb.teardown(!spec.Resume)
		}
	}()
	if sb.slot, err = b.slots.acquire(spec.ID, spec.Ephemeral); err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "%w", err)
	}
	base := uidBase + sb.slot.n*idsPerBox
	sock, err := sb.startAgent(base)
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	err = agent.SendConfig(sock, &agent.BootConfig{
		RootDir:       b.root,
		Hostname:      spec.Hostname,
		UID:           SandboxUID,
		GID:           SandboxGID,
		TmpBytes:      l.TmpBytes,
		NoFile:        uint64(l.OpenFiles),
		FSize:         uint64(fileLimit(l)),
		CgroupVersion: int(b.cg.Version()),
		Landlock:      !b.opts.DisableLandlock,
		Seccomp:       b.seccomp,
	})
	if err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "%w", err)
	}
	tStarted = time.Since(t0)

	// On disk, workspace files belong to the sandbox's ids as seen inside
	// (1000): an idmapped mount shows them to the sandbox through its own
	// user namespace, whatever host id range the sandbox got this time.
	var ws string
	if spec.Resume {
		if ws = b.vol.Path(spec.ID); ws == "" {
			return nil, cove.Errorf(cove.CodeInvalid, "invalid sandbox id %q", spec.ID)
		}
		// Only a workspace that is not there is gone (not_found, which
		// the service takes for files lost for good); one that cannot be
		// reached now is the volume's trouble.
		if _, err := os.Stat(ws); errors.Is(err, fs.ErrNotExist) {
			return nil, cove.Errorf(cove.CodeNotFound, "the workspace of sandbox %s is gone", spec.ID)
		} else if err != nil {
			return nil, cove.Errorf(cove.CodeUnavailable, "the workspace of sandbox %s cannot be reached: %w", spec.ID, err)
		}
	} else if ws, err = b.vol.Create(spec.ID, l.DiskBytes, SandboxUID, SandboxGID); err != nil {
		return nil, layer("workspace", err)
	}
	sb.volCreated = true
	wsMount, err := idmappedMount(ws, sb.proc.Pid)
	if err != nil {
		return nil, layer("workspace", err)
	}
	defer wsMount.Close()
	if l.HasNetwork() {
		// Kept for Listen: the sandbox's network is reached through the
		// namespace, not the pid, which another process may have later.
		if sb.netns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", sb.proc.Pid)); err != nil {
			return nil, layer("network", err)
		}
	}
	if sb.cg, err = b.cg.Create(spec.ID, l, base, base); err != nil {
		return nil, layer("cgroups", err)
	}
	// The agent joins its cgroups before it has read its boot config, so
	// before anything of the user's runs.
	if err := sb.cg.AddAgent(sb.proc.Pid); err != nil {
		return nil, layer("cgroups", err)
	}
	cgFiles, err := sb.cg.AgentFiles()
	if err != nil {
		return nil, layer("cgroups", err)
	}
	defer func() {
		for _, f := range cgFiles {
			f.Close()
		}
	}()
	tResources = time.Since(t0)
	bootCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	etcMnt, err := etcMount(b.etc)
	if err != nil {
		return nil, layer("/etc", err)
	}
	defer etcMnt.Close()
	client, reply, err := agent.Boot(bootCtx, sock, wsMount, etcMnt, cgFiles)
	if err != nil {
		if cove.ErrorCode(err) == cove.CodeUnavailable || ctx.Err() != nil {
			return nil, err
		}
		sb.proc.Kill()
		<-sb.exited
		return nil, cove.Errorf(cove.CodeUnavailable, "sandbox agent failed to start: %v%s", err, sb.stderrText())
	}
	b.log.Debug("sandbox booted", "id", spec.ID, "agent_started", tStarted, "resources_ready", tResources,
		"booted", time.Since(t0), "agent_init_us", reply.StartMicros, "steps", reply.Steps, "landlock_abi", reply.Landlock)
	sb.client = client
	return sb, nil
}

// idmappedMount returns a detached copy of the workspace mount whose ids
// are mapped through the user namespace of process pid, for the agent to
// attach: it need not, and cannot, walk the host's data directory.
func idmappedMount(ws string, pid int) (*os.File, error) {
	userns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("opening the sandbox's user namespace: %w", err)
	}
	defer userns.Close()
	fd, err := unix.OpenTree(unix.AT_FDCWD, ws, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open_tree: %w", err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("idmapping the workspace mount: %w", err)
	}
	return os.NewFile(uintptr(fd), "workspace"), nil
}

// startAgent starts the sandbox's agent in new namespaces, with the host
// ids from base mapped to 0..65535 inside, and returns the host's end of
// the agent's connection.
func (sb *sandbox) startAgent(base int) (*os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "socketpair: %w", err)
	}
	hostEnd := os.NewFile(uintptr(fds[0]), "agent-conn")
	agentEnd := os.NewFile(uintptr(fds[1]), "agent-conn")
	defer agentEnd.Close()
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		hostEnd.Close()
		return nil, cove.Errorf(cove.CodeInternal, "pipe: %w", err)
	}
	defer stderrW.Close()
	proc, err := sb.b.spawn(agent.SpawnRequest{Base: base, Size: idsPerBox}, []*os.File{sb.b.devNull, sb.b.devNull, stderrW, agentEnd})
	if err != nil {
		hostEnd.Close()
		stderrR.Close()
		return nil, layer("namespaces", err)
	}
	sb.proc = proc
	// When the host runs out of memory, the kernel kills the sandboxes'
	// processes first, not cove or the host's own: every process of the
	// sandbox inherits the agent's score, and none can lower it.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", proc.Pid), []byte("1000"), 0); err != nil {
		sb.b.log.Warn("setting the sandbox's OOM score", "err", err)
	}
	go func() {
		io.Copy(&limitedBuffer{b: sb.stderr, n: 4096, mu: &sb.mu}, stderrR)
		stderrR.Close()
	}()
	go func() {
		proc.Wait()
		close(sb.exited)
	}()
	return hostEnd, nil
}

// spawn has the launcher start an agent, starting the launcher first if it
// is not running (the first time, or after it died).
func (b *Backend) spawn(req agent.SpawnRequest, files []*os.File) (*agent.AgentProcess, error) {
	if !b.opts.Launcher {
		return agent.StartAgent(b.opts.AgentPath, b.agentBin, req, files)
	}
	for attempt := 0; ; attempt++ {
		b.launchMu.Lock()
		l := b.launcher
		if l == nil {
			var err error
			if l, err = agent.StartLauncher(b.opts.AgentPath, b.agentBin); err != nil {
				b.launchMu.Unlock()
				return nil, err
			}
			b.launcher = l
		}
		b.launchMu.Unlock()
		proc, err := l.Spawn(req, files)
		if errors.Is(err, agent.ErrLauncherGone) && attempt == 0 {
			b.log.Warn("the sandbox launcher exited; starting a new one", "err", err)
			b.launchMu.Lock()
			if b.launcher == l {
				b.launcher = nil
				l.Close()
			}
			b.launchMu.Unlock()
			continue
		}
		return proc, err
	}
}

func fileLimit(l cove.Limits) int64 {
	if l.FileBytes > 0 {
		return l.FileBytes
	}
	return l.DiskBytes
}

func layer(name string, err error) error {
	if cove.ErrorCode(err) != cove.CodeInternal {
		return err
	}
	return cove.Errorf(cove.CodeUnavailable, "sandbox isolation failed at %s: %w", name, err)
}

// Sweep implements runtime.Sweeper. It removes the cgroups of sandboxes
// whose owning process died (their slot lock is free) and the workspaces
// of those that were ephemeral; with keep, also every workspace that
// neither a live sandbox nor keep claims. Cgroups are only removed for ids
// found in dead slots: another cove process may have sandboxes of its own
// under the same cgroup parent.
func (b *Backend) Sweep(ctx context.Context, keep func(id string) bool) error {
	lock, err := b.sweepLock(unix.LOCK_EX)
	if err != nil {
		return fmt.Errorf("taking sweep lock: %w", err)
	}
	defer lock.Close()
	live, dead, err := b.slots.scan()
	if err != nil {
		return fmt.Errorf("reading sandbox slots: %w", err)
	}
	// A dead owner's sandbox is dead too: its cgroups always go, and so
	// does its workspace if nothing keeps a record of it.
	for n, d := range dead {
		if g, err := b.cg.Open(d.id); err == nil {
			if err := g.Destroy(); err != nil {
				b.log.Warn("removing stale cgroup", "id", d.id, "err", err)
				continue
			}
			b.log.Info("removed stale cgroup", "id", d.id)
		}
		if d.ephemeral {
			if d.data != "" && d.data != b.slots.data {
				// The workspace is in another data directory's volume:
				// the slot stays, for a cove of that directory to
				// remove the workspace and then free the slot, unless
				// that directory is gone, and the workspace with it
				// (no cove would ever come for it, and every sandbox's
				// start would step over the slot).
				if _, err := os.Stat(d.data); !errors.Is(err, fs.ErrNotExist) {
					continue
				}
				b.log.Info("freed the slot of a sandbox whose data directory is gone", "id", d.id, "data", d.data)
			} else if err := b.vol.Delete(d.id); err != nil {
				b.log.Warn("removing stale workspace", "id", d.id, "err", err)
				continue
			}
		}
		b.slots.clear(n)
	}
	if keep == nil {
		// No records to judge the other workspaces by (a one-shot cove
		// next to a server that owns them): leave them.
		return nil
	}
	ws, err := b.vol.List()
	if err != nil {
		return fmt.Errorf("listing workspaces: %w", err)
	}
	for _, id := range ws {
		if live[id] || keep(id) {
			continue
		}
		if err := b.vol.Delete(id); err != nil {
			b.log.Warn("removing stale workspace", "id", id, "err", err)
		} else {
			b.log.Info("removed stale workspace", "id", id)
		}
	}
	return nil
}

// sandbox is one native sandbox.
type sandbox struct {
	id         string
	b          *Backend
	slot       *slot
	cg         *cgroups.Group
	volCreated bool
	proc       *agent.AgentProcess
	client     *agent.Client
	exited     chan struct{}
	netns      *os.File // the network namespace, when the limits allow egress, until Listen

	mu        sync.Mutex
	stderr    *bytes.Buffer
	destroyed bool
}

func (s *sandbox) ID() string            { return s.id }
func (s *sandbox) Agent() *agent.Client  { return s.client }
func (s *sandbox) Done() <-chan struct{} { return s.exited }
func (s *sandbox) stderrText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stderr == nil || s.stderr.Len() == 0 {
		return ""
	}
	return ": " + s.stderr.String()
}

// Stop implements runtime.Instance.
func (s *sandbox) Stop(ctx context.Context) error { return s.teardown(false) }

// Destroy implements runtime.Instance.
func (s *sandbox) Destroy(ctx context.Context) error { return s.teardown(true) }

// Listen implements runtime.Listener: it listens on addr inside the
// sandbox's network namespace, from a thread that enters it for the
// socket's creation only. It may be called once: the namespace is let go
// once the socket is made, so that what holds it after the sandbox dies
// is the listener alone, which its owner closes then.
func (s *sandbox) Listen(addr string) (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return nil, cove.Errorf(cove.CodeConflict, "sandbox %s has been stopped", s.id)
	}
	if s.netns == nil {
		return nil, cove.Errorf(cove.CodeConflict, "sandbox %s has no network to listen in: it was created without a network limit, or something listens in it already", s.id)
	}
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		host, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			goruntime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer host.Close()
		if err := unix.Setns(int(s.netns.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("entering the sandbox's network: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		if serr := unix.Setns(int(host.Fd()), unix.CLONE_NEWNET); serr != nil {
			// The thread stays locked, so it ends with this goroutine
			// rather than run other goroutines in the sandbox's network.
			if ln != nil {
				ln.Close()
			}
			ch <- result{err: fmt.Errorf("leaving the sandbox's network: %w", serr)}
			return
		}
		goruntime.UnlockOSThread()
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "listening on %s in sandbox %s: %w", addr, s.id, r.err)
	}
	s.netns.Close()
	s.netns = nil
	return r.ln, nil
}

// DeleteWorkspace implements runtime.Backend.
func (b *Backend) DeleteWorkspace(ctx context.Context, id string) error {
	if err := b.vol.Delete(id); err != nil {
		return cove.Errorf(cove.CodeInternal, "removing the workspace of sandbox %s: %w", id, err)
	}
	return nil
}

// teardown kills the sandbox and removes its resources; the workspace too
// when removeWorkspace is set.
func (s *sandbox) teardown(removeWorkspace bool) error {
	s.mu.Lock()
	if s.destroyed {
		s.mu.Unlock()
		return nil
	}
	s.destroyed = true
	s.mu.Unlock()
	t0 := time.Now()
	if s.client != nil {
		s.client.Close()
	}
	if s.netns != nil {
		s.netns.Close()
	}
	if s.proc != nil {
		// Killing PID 1 makes the kernel kill every process of the
		// sandbox's pid namespace.
		s.proc.Kill()
	}
	// btrfs removes a subvolume that is still bound in the dying sandbox's
	// mount namespace, so the workspace goes while the processes die and
	// their cgroups are removed.
	var wsErr error
	var tWs time.Duration
	wsDone := make(chan struct{})
	go func() {
		defer close(wsDone)
		if s.volCreated && removeWorkspace {
			wsErr = s.b.vol.Delete(s.id)
		}
		tWs = time.Since(t0)
	}()
	var errs []error
	if s.proc != nil {
		<-s.exited
	}
	tExited := time.Since(t0)
	if s.cg != nil {
		if err := s.cg.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("removing cgroups: %w", err))
		}
	}
	<-wsDone
	if wsErr != nil {
		errs = append(errs, fmt.Errorf("removing workspace: %w", wsErr))
	}
	s.b.log.Debug("sandbox destroyed", "id", s.id, "workspace_removed", tWs, "agent_exited", tExited, "done", time.Since(t0))
	if len(errs) == 0 {
		s.slot.release()
		return nil
	}
	// Keep the slot locked: the leftovers stay attributed to this
	// process, and the next sweep after it exits removes them.
	return cove.Errorf(cove.CodeInternal, "destroying sandbox %s: %v", s.id, errs)
}

// limitedBuffer keeps the first n bytes written to it.
type limitedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
	n  int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.n - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}
