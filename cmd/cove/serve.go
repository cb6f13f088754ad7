package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/config"
	"github.com/cove-sandbox/cove/internal/connlimit"
	"github.com/cove-sandbox/cove/internal/httpapi"
	"github.com/cove-sandbox/cove/internal/mcpserver"
	"github.com/cove-sandbox/cove/internal/runtime/native"
	"github.com/cove-sandbox/cove/internal/service"
	"github.com/cove-sandbox/cove/internal/store"
	"github.com/cove-sandbox/cove/internal/webui"
)

func newServeCmd(e *env) *cobra.Command {
	var addr, data string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the REST API and the web UI for many users, programs and agents",
		Long: `Serve cove's REST API, its web UI and its MCP endpoint.

State lives in the data directory: a SQLite database and the sandboxes'
workspaces. On its first start cove creates an admin API key in
<data>/admin.key (mode 0600); COVE_ADMIN_KEY gives one of your choosing
instead, which the CLI uses too. An admin key of an earlier start stays
valid until revoked (cove keys ls, cove keys revoke). Every request but
GET /healthz and GET /v1/openapi.json needs "Authorization: Bearer <key>".

AI agents reach the same sandboxes over MCP (streamable HTTP) at /mcp, with
the same keys; see also cove mcp.

The web UI is at /: open the login link printed at start (it changes on
every start) to get a browser session that acts as the admin key. The
server answers only its listen address and localhost by name; set
COVE_PUBLIC_URL (such as https://cove.example.com) when browsers reach it
by another name.

Sandboxes that were running when cove last stopped come back stopped, with
their files; starting one resumes it. On SIGTERM or Ctrl-C, running
executions get the drain timeout to finish (30s; drain_timeout in the
config file, COVE_DRAIN_TIMEOUT).

Settings come from the config file (COVE_CONFIG, else /etc/cove/config.json
when it exists), then COVE_* variables, then flags. The server logs to
standard error at log_level (COVE_LOG_LEVEL; info unless set) in
log_format (COVE_LOG_FORMAT: text, or json). GET /healthz needs no key and
answers 503 while the server drains or its disk failed, for a load
balancer. GET /metrics is for Prometheus and needs an admin key, unless
metrics_public (COVE_METRICS_PUBLIC=true) lets a scraper on a trusted
network read it without one.`,
		Example: `  cove serve
  cove serve --addr 0.0.0.0:7070 --data /srv/cove`,
		Args: noArgs("serve [flags]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("server") {
				// The flag every command inherits names a server to talk
				// to; this command is the server.
				return cove.Errorf(cove.CodeInvalid, "--server names a cove server to talk to, and cove serve is the server: give the address it listens on with --addr or COVE_ADDR")
			}
			if addr != "" {
				e.cfg.Addr = addr
				e.cfg.SetBy("addr", "--addr")
			}
			if data != "" {
				e.cfg.DataDir = data
				e.cfg.SetBy("data_dir", "--data")
			}
			return serve(cmd.Context(), e)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "address to listen on (default 127.0.0.1:7070; COVE_ADDR)")
	cmd.Flags().StringVar(&data, "data", "", "data directory (default /var/lib/cove for root; COVE_DATA_DIR)")
	return cmd
}

// serverGC sets the garbage collector's pace for a server: its live heap
// is a few MiB, which at the default pace means several collections a
// second under load. Four times the live heap between collections costs a
// few MiB and saves most of that CPU. GOGC, when set, wins.
func serverGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

func serve(ctx context.Context, e *env) error {
	cfg := e.cfg
	// What can be refused at once is, before anything is made.
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := checkAdminKey(e.getenv("COVE_ADMIN_KEY")); err != nil {
		return err
	}
	serverGC(e.getenv)
	logCfg := cfg
	if !cfg.Given("log_level") {
		// A server says what it is doing, unless told otherwise; the
		// default of warn suits the commands that a person runs.
		logCfg.LogLevel = "info"
	}
	log := newLogger(e.stderr, logCfg)
	say := announcer(e.stderr, cfg.LogFormat)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return cove.Errorf(cove.CodeUnavailable, "creating the data directory: %w", err)
	}
	checkDefaultLimits(cfg, log)
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	// The address first: a server that cannot listen must not have made a
	// key, a database or a mounted volume on its way to failing.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return cove.Errorf(cove.CodeUnavailable, "listening on %s: %v (another server there? choose another with --addr or COVE_ADDR)", cfg.Addr, err)
	}
	defer ln.Close()

	st, err := store.Open(ctx, filepath.Join(cfg.DataDir, "cove.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	be, err := native.New(ctx, e.nativeOptions(log, true))
	if err != nil {
		return err
	}
	defer be.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), dataDiskFree(cfg.DataDir))
	svc := service.New(be, service.Options{
		Defaults:    cfg.Limits,
		Records:     st,
		IdleTimeout: cfg.IdleTimeout,
		TTL:         cfg.TTL,
		PoolSize:    cfg.PoolSize,
		RunReuse:    cfg.RunReuse,
		Metrics:     service.NewMetrics(reg),
		Analyzer:    e.analyzer(log),
		Logger:      log,

		NetworkPrivate: cfg.NetworkPrivate,
	})
	if err := svc.Start(ctx); err != nil {
		return err
	}
	adminSecret, err := adminKey(ctx, e, svc, cfg.DataDir, log, say)
	if err != nil {
		svc.Shutdown(context.WithoutCancel(ctx))
		return err
	}

	agents := mcpserver.New(svc, mcpserver.Options{Logger: log})
	// The web UI at /: a browser logs in with the link printed below.
	publicURL := e.getenv("COVE_PUBLIC_URL")
	ui, err := webui.New(webui.Options{Auth: svc, LoginSecret: adminSecret, ListenAddr: ln.Addr().String(), PublicURL: publicURL, Logger: log})
	if err != nil {
		svc.Shutdown(context.WithoutCancel(ctx))
		return err
	}
	srv := &http.Server{
		Handler: ui.Wrap(httpapi.New(svc, httpapi.Options{
			Auth:            svc,
			Metrics:         promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
			MetricsRegistry: reg,
			PublicMetrics:   cfg.MetricsPublic,
			MCP:             agents.Handler(),
			Sessions:        ui,
			Logger:          log,
		})),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	say(fmt.Sprintf("cove %s serving on http://%s (data in %s)", cove.Version, ln.Addr(), cfg.DataDir),
		"cove serving on http://"+ln.Addr().String(), "version", cove.Version, "addr", ln.Addr().String(), "data_dir", cfg.DataDir)
	if publicURL == "" {
		publicURL = webui.ListenURL(ln.Addr())
	}
	if err := announceLogin(e, cfg.DataDir, ui.LoginURL(publicURL), say); err != nil {
		return err
	}
	if cfg.MetricsPublic {
		log.Info("GET /metrics needs no key", "setting", cfg.Source("metrics_public"))
	}
	served := make(chan error, 1)
	// Connections are bounded by cove's open files: a quarter for the API
	// (the egress proxies may hold half), at least 64, and a quarter of
	// those for one address.
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		nofile.Cur = 1024
	}
	conns := int(max(min(nofile.Cur/4, 1<<20), 64))
	go func() { served <- srv.Serve(connlimit.Listener(ln, conns, max(conns/4, 16))) }()

	select {
	case err := <-served:
		svc.Shutdown(context.WithoutCancel(ctx))
		return cove.Errorf(cove.CodeUnavailable, "serving: %v", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining running executions", "deadline", cfg.DrainTimeout)
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	// Running executions finish (or are cancelled at the deadline), and
	// their responses are written, before the listener closes.
	if err := svc.Shutdown(drain); err != nil {
		log.Error("stopping sandboxes", "err", err)
	}
	// The sandboxes MCP sessions made for themselves end with the sessions.
	if err := agents.Close(context.WithoutCancel(ctx)); err != nil {
		log.Warn("deleting the sandboxes of MCP sessions", "err", err)
	}
	closeCtx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel2()
	if err := srv.Shutdown(closeCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("closing connections", "err", err)
	}
	log.Info("stopped")
	return nil
}

// dataDiskFree is a gauge of the space left on the disk that holds the
// data directory, to alert on before it fills up: the workspaces' image is
// sparse and grows there as sandboxes write, and a write that finds the
// disk full makes every workspace read-only until cove restarts.
func dataDiskFree(dir string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cove_data_disk_free_bytes",
		Help: "Bytes free on the disk that holds the data directory (the database and the workspaces' sparse image); when it fills, workspaces turn read-only.",
	}, func() float64 {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return -1
		}
		return float64(st.Bavail) * float64(st.Bsize)
	})
}

// lockDataDir makes sure one server at a time uses a data directory.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "serve.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "opening the data directory lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, cove.Errorf(cove.CodeConflict, "another cove serve is using %s: stop it first, or give this one its own --data directory", dir)
	}
	return f, nil
}

// checkAdminKey refuses a COVE_ADMIN_KEY too short to be a secret; an
// empty one means none.
func checkAdminKey(secret string) error {
	if secret != "" && len(secret) < 16 {
		return cove.Errorf(cove.CodeInvalid, "COVE_ADMIN_KEY is too short: use at least 16 random characters")
	}
	return nil
}

// announce tells the person starting cove serve what it needs to reach
// it: text as a plain line, or, when the log is JSON, msg and args as a
// record at info whatever the log level, so that every line is JSON.
type announce func(text, msg string, args ...any)

func announcer(w io.Writer, format string) announce {
	if format != "json" {
		return func(text, _ string, _ ...any) { fmt.Fprintln(w, text) }
	}
	log := slog.New(slog.NewJSONHandler(w, nil))
	return func(_, msg string, args ...any) { log.Info(msg, args...) }
}

// announceLogin tells where the web UI's login link is. The link is an
// admin session for whoever holds it: it is shown on a terminal, and
// otherwise (a service manager's log, a log shipper) written to
// <data>/login.url, mode 0600 as admin.key, with only its path in the log.
func announceLogin(e *env, dataDir, link string, say announce) error {
	if isTerminal(e.stderr) {
		say("web UI: open "+link, "web UI login link", "url", link)
		return nil
	}
	path := filepath.Join(dataDir, "login.url")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(link+"\n"), 0o600); err != nil {
		return cove.Errorf(cove.CodeUnavailable, "writing the web UI's login link: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return cove.Errorf(cove.CodeUnavailable, "writing the web UI's login link: %w", err)
	}
	say("web UI: the login link is in "+path+" (as private as admin.key; a new one on every start)", "web UI login link written", "path", path)
	return nil
}

// adminKey installs the admin key, COVE_ADMIN_KEY or the one kept in
// <data>/admin.key (made on the first start), and returns its secret.
func adminKey(ctx context.Context, e *env, svc *service.Service, dataDir string, log *slog.Logger, say announce) (string, error) {
	if secret := e.getenv("COVE_ADMIN_KEY"); secret != "" {
		if err := checkAdminKey(secret); err != nil {
			return "", err
		}
		if err := svc.EnsureAdminKey(ctx, secret); err != nil {
			return "", err
		}
		warnEarlierAdminKeys(ctx, svc, secret, log)
		return secret, nil
	}
	path := filepath.Join(dataDir, "admin.key")
	secret, created, err := service.LoadOrCreateAdminSecret(path)
	if err != nil {
		return "", cove.Errorf(cove.CodeUnavailable, "admin key: %w", err)
	}
	if err := svc.EnsureAdminKey(ctx, secret); err != nil {
		return "", err
	}
	if created {
		say(fmt.Sprintf("created an admin API key in %s (mode 0600); use it as: Authorization: Bearer $(cat %s)", path, path), "created an admin API key", "path", path)
	} else {
		say("admin API key: "+path, "admin API key", "path", path)
	}
	return secret, nil
}

// warnEarlierAdminKeys warns of the admin keys of earlier starts (the one
// of <data>/admin.key, an earlier COVE_ADMIN_KEY) that stay valid beside
// COVE_ADMIN_KEY's. Keeping them is deliberate, so that the clients that
// use them keep working; but an operator who set COVE_ADMIN_KEY to
// replace a leaked key must learn that the old one still works.
func warnEarlierAdminKeys(ctx context.Context, svc *service.Service, secret string, log *slog.Logger) {
	current, err := svc.Authenticate(ctx, secret)
	if err != nil {
		return
	}
	keys, err := svc.ListKeys(cove.WithKey(ctx, current))
	if err != nil {
		log.Warn("listing the admin keys of earlier starts", "err", err)
		return
	}
	for _, k := range keys {
		// The keys EnsureAdminKey made, not those made with cove keys
		// create --admin, which are meant to stay.
		made := k.Name == "admin" && (k.ID == "admin" || strings.HasPrefix(k.ID, "admin-"))
		if k.ID == current.ID || !k.Admin || k.RevokedAt != nil || !made {
			continue
		}
		log.Warn(fmt.Sprintf("an earlier admin key stays valid beside COVE_ADMIN_KEY: revoke it with `cove keys revoke %s` unless clients still use it", k.ID), "key", k.ID, "created", k.CreatedAt.Format(time.RFC3339))
	}
}

// checkDefaultLimits logs, as an error, a default limit that no sandbox
// on this machine can have, naming the setting: every sandbox that sets
// none of its own would be refused, while /healthz says all is well. It
// does not refuse to start: free space comes and goes, and sandboxes that
// ask for less still work.
func checkDefaultLimits(cfg config.Config, log *slog.Logger) {
	var st unix.Statfs_t
	if err := unix.Statfs(cfg.DataDir, &st); err == nil {
		if free := int64(st.Bavail) * int64(st.Bsize); cfg.Limits.DiskBytes > free {
			log.Error(fmt.Sprintf("the default disk limit (%s) is more than the %s free where workspaces are kept (%s): every sandbox that does not ask for less will be refused; lower it (%s) or free space", cove.FormatBytes(cfg.Limits.DiskBytes), cove.FormatBytes(free), cfg.DataDir, cfg.Source("limits.disk")),
				"setting", cfg.Source("limits.disk"), "disk", cfg.Limits.DiskBytes, "free", free, "dir", cfg.DataDir)
		}
	}
	if host := goruntime.NumCPU(); cfg.Limits.CPUs > float64(host) {
		log.Error(fmt.Sprintf("the default CPU limit (%g) is more than this machine has (%d): every sandbox that does not ask for less will be refused; lower it (%s)", cfg.Limits.CPUs, host, cfg.Source("limits.cpus")),
			"setting", cfg.Source("limits.cpus"), "cpus", cfg.Limits.CPUs, "host", host)
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err == nil {
		if total := int64(si.Totalram) * int64(si.Unit); cfg.Limits.MemoryBytes > total {
			log.Error(fmt.Sprintf("the default memory limit (%s) is more than this machine has (%s): every sandbox that does not ask for less will be refused; lower it (%s)", cove.FormatBytes(cfg.Limits.MemoryBytes), cove.FormatBytes(total), cfg.Source("limits.memory")),
				"setting", cfg.Source("limits.memory"), "memory", cfg.Limits.MemoryBytes, "total", total)
		}
	}
}
