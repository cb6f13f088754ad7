// Package config holds cove's one configuration struct: embedded defaults,
// then a JSON file, then COVE_* environment variables, then flags (applied
// by the CLI). Validate reports every problem at once.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/spelling"
	"github.com/cove-sandbox/cove/internal/wire"
)

// Config is cove's configuration.
type Config struct {
	// DataDir holds the workspace volume and, later, the database.
	DataDir string
	// RunDir holds locks and mount points; it is cleared on reboot.
	RunDir string
	// Limits are the default limits of new sandboxes.
	Limits cove.Limits
	// Landlock turns Landlock on where the kernel has it.
	Landlock bool
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text (slog's key=value lines) or json (one JSON
	// object a line, for a log collector).
	LogFormat string
	// Addr is where `cove serve` listens.
	Addr string
	// MetricsPublic lets anyone read GET /metrics without a key, for a
	// Prometheus scraper on a trusted network; otherwise it needs an
	// admin key.
	MetricsPublic bool
	// PoolSize is how many idle sandboxes `cove serve` keeps ready.
	PoolSize int
	// RunReuse is how many sandboxes of finished one-call runs (POST
	// /v1/run) `cove serve` keeps for each key, reset, for that key's next
	// runs with the same limits (0: every run gets a new sandbox).
	RunReuse int
	// IdleTimeout stops server sandboxes that have been idle this long,
	// unless they set their own (0: never).
	IdleTimeout time.Duration
	// TTL deletes server sandboxes this long after creation, unless they
	// set their own (0: never).
	TTL time.Duration
	// DrainTimeout is how long `cove serve` lets running executions finish
	// after SIGTERM.
	DrainTimeout time.Duration
	// NetworkPrivate are the non-public addresses (loopback, private
	// networks, link-local) that sandboxes whose network limit names them
	// may reach through the egress proxy, such as a package mirror on the
	// local network; any other such address is refused.
	NetworkPrivate []netip.Prefix
	// AI configures code analysis with Claude.
	AI AIConfig

	// origins says where each setting that was given came from, by the
	// setting's key in the file ("addr", "limits.disk"): messages about
	// a value name what the operator wrote, not cove's field.
	origins map[string]string
}

// SetBy records that the setting key (as the configuration file names it,
// such as "addr") was given by source, such as a flag ("--addr"), for the
// messages about its value. The record is copied, not shared, with
// copies of c made before.
func (c *Config) SetBy(key, source string) {
	m := maps.Clone(c.origins)
	if m == nil {
		m = map[string]string{}
	}
	m[key] = source
	c.origins = m
}

// Source says where the setting key (as the configuration file names it:
// "addr", "limits.disk") got its value, as a message names it: "--addr",
// "COVE_ADDR", "config file /etc/cove/config.json: addr", or the key
// itself when it has its default.
func (c Config) Source(key string) string {
	if s, ok := c.origins[key]; ok {
		return s
	}
	return key
}

// Given reports whether the setting key was given by the file, the
// environment or a flag, rather than left at its default.
func (c Config) Given(key string) bool {
	_, ok := c.origins[key]
	return ok
}

// AIConfig configures code analysis with Claude.
type AIConfig struct {
	// Model names the model (COVE_AI_MODEL; "" is the default Sonnet).
	Model string
	// APIKey is the Anthropic API key (ANTHROPIC_API_KEY). It is never
	// logged or printed.
	APIKey string `json:"-"`
	// BaseURL is the API's address for a gateway or proxy
	// (ANTHROPIC_BASE_URL; "" is the API's own).
	BaseURL string
}

// String describes the AI configuration without the key.
func (a AIConfig) String() string {
	key := "unset"
	if a.APIKey != "" {
		key = "set"
	}
	return fmt.Sprintf("model=%q base_url=%q api_key=%s", a.Model, a.BaseURL, key)
}

// Default returns the embedded defaults.
func Default() Config {
	c := Config{
		RunDir:       "/run/cove",
		Limits:       cove.DefaultLimits(),
		Landlock:     true,
		LogLevel:     "warn",
		LogFormat:    "text",
		Addr:         "127.0.0.1:7070",
		PoolSize:     2,
		RunReuse:     4,
		IdleTimeout:  30 * time.Minute,
		DrainTimeout: 30 * time.Second,
	}
	if os.Geteuid() == 0 {
		c.DataDir = "/var/lib/cove"
	} else if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		c.DataDir = x + "/cove"
	} else if h, err := os.UserHomeDir(); err == nil {
		c.DataDir = h + "/.local/share/cove"
	}
	return c
}

// file is the JSON form of the configuration file; sizes are strings such
// as "512M", durations strings such as "30s" or numbers of seconds, as the
// API takes them.
type file struct {
	DataDir       *string         `json:"data_dir"`
	RunDir        *string         `json:"run_dir"`
	Landlock      *bool           `json:"landlock"`
	LogLevel      *string         `json:"log_level"`
	LogFormat     *string         `json:"log_format"`
	Addr          *string         `json:"addr"`
	MetricsPublic *bool           `json:"metrics_public"`
	PoolSize      *int            `json:"pool_size"`
	RunReuse      *int            `json:"run_reuse"`
	IdleTimeout   json.RawMessage `json:"idle_timeout"`
	TTL           json.RawMessage `json:"ttl"`
	DrainTimeout  json.RawMessage `json:"drain_timeout"`
	AIModel       *string         `json:"ai_model"`
	// NetworkPrivate is a list of addresses or prefixes ("10.0.0.0/8").
	NetworkPrivate []string `json:"network_private"`
	Limits         struct {
		Memory    *string         `json:"memory"`
		CPUs      *float64        `json:"cpus"`
		Pids      *int            `json:"pids"`
		Disk      *string         `json:"disk"`
		Tmp       *string         `json:"tmp"`
		Timeout   json.RawMessage `json:"timeout"`
		Output    *string         `json:"output"`
		OpenFiles *int            `json:"open_files"`
		Network   *string         `json:"network"`
	} `json:"limits"`
}

// LoadFile applies the JSON configuration file at path to c. An empty
// file (or one of blanks only) is an empty configuration, as {} is.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return cove.Errorf(cove.CodeInvalid, "cannot read config file %s: %v", path, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var f file
	raw, probs := parseFile(b)
	if raw != nil {
		// The keys are checked by parseFile: what is left to go wrong
		// is a value's type.
		if err := json.Unmarshal(raw, &f); err != nil {
			probs = append(probs, decodeProblem(err))
		}
	}
	if len(probs) > 0 {
		return cove.Errorf(cove.CodeInvalid, "config file %s: %s", path, strings.Join(probs, "; "))
	}
	before := c.Limits
	for _, key := range givenKeys(raw) {
		c.SetBy(key, "config file "+path+": "+key)
	}
	setStr := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setStr(&c.DataDir, f.DataDir)
	setStr(&c.RunDir, f.RunDir)
	setStr(&c.LogLevel, f.LogLevel)
	setStr(&c.LogFormat, f.LogFormat)
	setStr(&c.Addr, f.Addr)
	setStr(&c.AI.Model, f.AIModel)
	if f.PoolSize != nil {
		c.PoolSize = *f.PoolSize
	}
	if f.RunReuse != nil {
		c.RunReuse = *f.RunReuse
	}
	for _, kv := range []struct {
		name string
		v    json.RawMessage
		dst  *time.Duration
	}{{"idle_timeout", f.IdleTimeout, &c.IdleTimeout}, {"ttl", f.TTL, &c.TTL}, {"drain_timeout", f.DrainTimeout, &c.DrainTimeout}, {"limits.timeout", f.Limits.Timeout, &c.Limits.Timeout}} {
		if kv.v == nil {
			continue
		}
		var d wire.Duration
		if err := d.UnmarshalJSON(kv.v); err != nil {
			rule, _ := wire.Rule(reflect.TypeFor[wire.Duration]())
			probs = append(probs, fmt.Sprintf("%s: %s is not %s", kv.name, kv.v, rule))
			continue
		}
		*kv.dst = time.Duration(d)
	}
	if f.Landlock != nil {
		c.Landlock = *f.Landlock
	}
	if f.MetricsPublic != nil {
		c.MetricsPublic = *f.MetricsPublic
	}
	l := &c.Limits
	for name, kv := range map[string]struct {
		v   *string
		dst *int64
	}{"memory": {f.Limits.Memory, &l.MemoryBytes}, "disk": {f.Limits.Disk, &l.DiskBytes}, "tmp": {f.Limits.Tmp, &l.TmpBytes}, "output": {f.Limits.Output, &l.OutputBytes}} {
		if kv.v == nil {
			continue
		}
		n, err := cove.ParseBytes(*kv.v)
		if err != nil {
			probs = append(probs, "limits."+name+": "+cove.ErrorMessage(err))
			continue
		}
		*kv.dst = n
	}
	if f.Limits.CPUs != nil {
		l.CPUs = *f.Limits.CPUs
	}
	if f.Limits.Pids != nil {
		l.Pids = *f.Limits.Pids
	}
	if f.Limits.OpenFiles != nil {
		l.OpenFiles = *f.Limits.OpenFiles
	}
	if f.Limits.Network != nil {
		if n, err := cove.NormalizeNetwork(*f.Limits.Network); err != nil {
			probs = append(probs, "limits."+cove.ErrorMessage(err))
		} else {
			l.Network = n
		}
	}
	if f.NetworkPrivate != nil {
		if ps, err := parsePrefixes(f.NetworkPrivate); err != nil {
			probs = append(probs, "network_private: "+err.Error())
		} else {
			c.NetworkPrivate = ps
		}
	}
	probs = append(probs, limitProblems(before, c.Limits, func(f limitField) string { return f.key })...)
	if len(probs) > 0 {
		return cove.Errorf(cove.CodeInvalid, "config file %s: %s", path, strings.Join(probs, "; "))
	}
	return nil
}

// ApplyEnv applies COVE_* variables read through getenv.
func (c *Config) ApplyEnv(lookup func(string) string) error {
	getenv := func(name string) string {
		v := lookup(name)
		if key, ok := envSettings[name]; ok && v != "" {
			c.SetBy(key, name)
		}
		return v
	}
	var probs []string
	before := c.Limits
	if v := getenv("COVE_DATA_DIR"); v != "" {
		c.DataDir = v
	}
	if v := getenv("COVE_RUN_DIR"); v != "" {
		c.RunDir = v
	}
	if v := getenv("COVE_LOG_LEVEL"); v != "" {
		c.LogLevel = v
	}
	if v := getenv("COVE_LOG_FORMAT"); v != "" {
		c.LogFormat = v
	}
	if v := getenv("COVE_ADDR"); v != "" {
		c.Addr = v
	}
	if v := getenv("COVE_AI_MODEL"); v != "" {
		c.AI.Model = strings.TrimSpace(v)
	}
	if v := getenv("ANTHROPIC_API_KEY"); v != "" {
		c.AI.APIKey = strings.TrimSpace(v)
	}
	if v := getenv("ANTHROPIC_BASE_URL"); v != "" {
		c.AI.BaseURL = strings.TrimSpace(v)
	}
	for _, kv := range []struct {
		name string
		dst  *time.Duration
	}{{"COVE_IDLE_TIMEOUT", &c.IdleTimeout}, {"COVE_TTL", &c.TTL}, {"COVE_DRAIN_TIMEOUT", &c.DrainTimeout}, {"COVE_TIMEOUT", &c.Limits.Timeout}} {
		if v := getenv(kv.name); v != "" {
			d, err := wire.ParseDuration(v)
			if err != nil {
				probs = append(probs, kv.name+": "+err.Error())
				continue
			}
			*kv.dst = d
		}
	}
	for _, kv := range []struct {
		name string
		dst  *bool
	}{{"COVE_LANDLOCK", &c.Landlock}, {"COVE_METRICS_PUBLIC", &c.MetricsPublic}} {
		if v := getenv(kv.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				probs = append(probs, fmt.Sprintf("%s: %q is not a boolean (use true or false)", kv.name, v))
				continue
			}
			*kv.dst = b
		}
	}
	for _, kv := range []struct {
		name string
		dst  *int64
	}{{"COVE_MEMORY", &c.Limits.MemoryBytes}, {"COVE_DISK", &c.Limits.DiskBytes}, {"COVE_TMP", &c.Limits.TmpBytes}, {"COVE_OUTPUT", &c.Limits.OutputBytes}} {
		if v := getenv(kv.name); v != "" {
			n, err := cove.ParseBytes(v)
			if err != nil {
				probs = append(probs, kv.name+": "+cove.ErrorMessage(err))
				continue
			}
			*kv.dst = n
		}
	}
	if v := getenv("COVE_CPUS"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			probs = append(probs, fmt.Sprintf("COVE_CPUS: %q is not a number", v))
		} else {
			c.Limits.CPUs = f
		}
	}
	for _, kv := range []struct {
		name string
		dst  *int
	}{{"COVE_PIDS", &c.Limits.Pids}, {"COVE_OPEN_FILES", &c.Limits.OpenFiles}, {"COVE_POOL_SIZE", &c.PoolSize}, {"COVE_RUN_REUSE", &c.RunReuse}} {
		if v := getenv(kv.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				probs = append(probs, fmt.Sprintf("%s: %q is not a whole number", kv.name, v))
				continue
			}
			*kv.dst = n
		}
	}
	if v := getenv("COVE_NETWORK"); v != "" {
		if n, err := cove.NormalizeNetwork(v); err != nil {
			// The message begins with "network", which the variable's
			// name stands for, as limits.network does in the file.
			probs = append(probs, "COVE_NETWORK"+strings.TrimPrefix(cove.ErrorMessage(err), "network"))
		} else {
			c.Limits.Network = n
		}
	}
	if v := getenv("COVE_NETWORK_PRIVATE"); v != "" {
		if ps, err := parsePrefixes(strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })); err != nil {
			probs = append(probs, "COVE_NETWORK_PRIVATE: "+err.Error())
		} else {
			c.NetworkPrivate = ps
		}
	}
	probs = append(probs, limitProblems(before, c.Limits, func(f limitField) string { return f.env })...)
	if len(probs) > 0 {
		return cove.Errorf(cove.CodeInvalid, "%s", strings.Join(probs, "; "))
	}
	return nil
}

// envSettings are the settings of the file that COVE_* variables give, by
// variable.
var envSettings = map[string]string{
	"COVE_DATA_DIR": "data_dir", "COVE_RUN_DIR": "run_dir", "COVE_LOG_LEVEL": "log_level", "COVE_LOG_FORMAT": "log_format",
	"COVE_ADDR": "addr", "COVE_METRICS_PUBLIC": "metrics_public", "COVE_AI_MODEL": "ai_model", "COVE_LANDLOCK": "landlock",
	"COVE_IDLE_TIMEOUT": "idle_timeout", "COVE_TTL": "ttl", "COVE_DRAIN_TIMEOUT": "drain_timeout",
	"COVE_POOL_SIZE": "pool_size", "COVE_RUN_REUSE": "run_reuse", "COVE_NETWORK_PRIVATE": "network_private",
	"COVE_MEMORY": "limits.memory", "COVE_CPUS": "limits.cpus", "COVE_PIDS": "limits.pids", "COVE_DISK": "limits.disk",
	"COVE_TMP": "limits.tmp", "COVE_TIMEOUT": "limits.timeout", "COVE_OUTPUT": "limits.output",
	"COVE_OPEN_FILES": "limits.open_files", "COVE_NETWORK": "limits.network",
}

// limitField is a limit as the configuration file and the environment
// name it.
type limitField struct {
	key, env string
	// copy copies the limit from src to dst.
	copy func(dst, src *cove.Limits)
}

var limitFields = []limitField{
	{"limits.memory", "COVE_MEMORY", func(d, s *cove.Limits) { d.MemoryBytes = s.MemoryBytes }},
	{"limits.cpus", "COVE_CPUS", func(d, s *cove.Limits) { d.CPUs = s.CPUs }},
	{"limits.pids", "COVE_PIDS", func(d, s *cove.Limits) { d.Pids = s.Pids }},
	{"limits.disk", "COVE_DISK", func(d, s *cove.Limits) { d.DiskBytes = s.DiskBytes }},
	{"limits.tmp", "COVE_TMP", func(d, s *cove.Limits) { d.TmpBytes = s.TmpBytes }},
	{"limits.timeout", "COVE_TIMEOUT", func(d, s *cove.Limits) { d.Timeout = s.Timeout }},
	{"limits.output", "COVE_OUTPUT", func(d, s *cove.Limits) { d.OutputBytes = s.OutputBytes }},
	{"limits.open_files", "COVE_OPEN_FILES", func(d, s *cove.Limits) { d.OpenFiles = s.OpenFiles }},
}

// limitProblems checks, each on its own, the limits that changed from
// before to after, and names each out-of-range one as its source does
// (name): the check of the whole configuration afterwards could not tell
// where a value came from. Limits between fields (a file size over the
// disk) are left to that check.
func limitProblems(before, after cove.Limits, name func(limitField) string) []string {
	var probs []string
	for _, f := range limitFields {
		var was, now cove.Limits
		f.copy(&was, &before)
		f.copy(&now, &after)
		if was == now {
			continue
		}
		if err := now.Validate(); err != nil {
			probs = append(probs, name(f)+": "+strings.TrimPrefix(cove.ErrorMessage(err), "invalid limits: "))
		}
	}
	return probs
}

// parsePrefixes reads addresses ("10.1.2.3") and prefixes ("10.0.0.0/8").
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a prefix: use e.g. 10.0.0.0/8 or 192.168.1.20", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Validate reports every problem at once, each named by where its value
// came from (see Source).
func (c Config) Validate() error {
	var probs []string
	if c.DataDir == "" {
		probs = append(probs, "no data directory: set COVE_DATA_DIR")
	}
	if c.RunDir == "" {
		probs = append(probs, "no run directory: set COVE_RUN_DIR")
	}
	probs = append(probs, c.settingProblems()...)
	if err := c.Limits.Validate(); err != nil {
		probs = append(probs, cove.ErrorMessage(err))
	}
	for _, l := range []struct {
		key, what string
		zero      bool
	}{{"limits.memory", "memory", c.Limits.MemoryBytes == 0}, {"limits.pids", "pids", c.Limits.Pids == 0}, {"limits.disk", "disk", c.Limits.DiskBytes == 0}, {"limits.timeout", "timeout", c.Limits.Timeout == 0}} {
		if l.zero {
			probs = append(probs, fmt.Sprintf("%s: the default %s limit must not be zero", c.Source(l.key), l.what))
		}
	}
	if len(probs) > 0 {
		return cove.Errorf(cove.CodeInvalid, "invalid configuration: %s", strings.Join(probs, "; "))
	}
	return nil
}

// settingProblems checks the settings that are not limits (which are
// checked as they are read, see limitProblems), each on its own.
func (c Config) settingProblems() []string {
	var probs []string
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		probs = append(probs, fmt.Sprintf("%s %q: use debug, info, warn or error", c.Source("log_level"), c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		probs = append(probs, fmt.Sprintf("%s %q: use text or json", c.Source("log_format"), c.LogFormat))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		probs = append(probs, fmt.Sprintf("%s %q: use host:port, such as 127.0.0.1:7070 or 0.0.0.0:7070", c.Source("addr"), c.Addr))
	}
	if c.PoolSize < 0 || c.PoolSize > 64 {
		probs = append(probs, fmt.Sprintf("%s %d is out of range (0 to 64 idle sandboxes)", c.Source("pool_size"), c.PoolSize))
	}
	if c.RunReuse < 0 || c.RunReuse > 64 {
		probs = append(probs, fmt.Sprintf("%s %d is out of range (0 to 64 sandboxes kept per key)", c.Source("run_reuse"), c.RunReuse))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"idle_timeout", c.IdleTimeout}, {"ttl", c.TTL}, {"drain_timeout", c.DrainTimeout}} {
		if d.v < 0 {
			probs = append(probs, fmt.Sprintf("%s %s must not be negative: give 0 for none, or a duration such as \"10m\"", c.Source(d.key), d.v))
		}
	}
	if u := c.AI.BaseURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			probs = append(probs, fmt.Sprintf("ANTHROPIC_BASE_URL %q: use an http or https URL such as https://gateway.example.com", u))
		}
	}
	return probs
}

// Load returns the configuration from the defaults, the file named by
// COVE_CONFIG (or /etc/cove/config.json when it exists) and the environment.
func Load(getenv func(string) string) (Config, error) {
	c := Default()
	path := getenv("COVE_CONFIG")
	if path == "" {
		if _, err := os.Stat("/etc/cove/config.json"); err == nil {
			path = "/etc/cove/config.json"
		}
	}
	var errs []error
	if path != "" {
		if err := c.LoadFile(path); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.ApplyEnv(getenv); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// The settings that did read are checked too, so that one try
		// shows every problem. Without such errors, the commands that
		// use the settings check them (Validate), after their flags.
		if probs := c.settingProblems(); len(probs) > 0 {
			errs = append(errs, errors.New(strings.Join(probs, "; ")))
		}
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = cove.ErrorMessage(err)
		}
		return c, cove.Errorf(cove.CodeInvalid, "%s", strings.Join(msgs, "; "))
	}
	return c, nil
}

// parseFile reads the one JSON object of a configuration file, and
// returns it with the problems of its form: not JSON, not an object, more
// than one value, keys that are no setting. It returns no object when
// there is none to read further.
func parseFile(b []byte) (json.RawMessage, []string) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, []string{syntaxProblem(b, err)}
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		// Another object, or text after the first: a mistake (two files
		// joined, an editor's leftovers) that would go unseen if the
		// rest were ignored.
		line, col := position(b, skipBlanks(b, end))
		return nil, []string{fmt.Sprintf("more text after the settings' object, at line %d, column %d: the file holds one JSON object, {...}", line, col)}
	}
	if kind := jsonKind(raw); kind != "an object" {
		return nil, []string{fmt.Sprintf(`the file holds %s: write the settings as one JSON object, such as {"log_level": "info"}`, kind)}
	}
	return raw, unknownKeys("", raw, reflect.TypeFor[file]())
}

// syntaxProblem says where the file stops being JSON, by line and column.
func syntaxProblem(b []byte, err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		line, col := position(b, int64(len(b)))
		return fmt.Sprintf(`not valid JSON: the file ends (line %d, column %d) before its object does: is a "}" or a quote missing?`, line, col)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(b, se.Offset-1)
		return fmt.Sprintf("not valid JSON at line %d, column %d: %v", line, col, se)
	}
	return "not valid JSON: " + err.Error()
}

// skipBlanks returns the offset of the first byte at or after off that is
// not a blank.
func skipBlanks(b []byte, off int64) int64 {
	for off < int64(len(b)) && strings.IndexByte(" \t\r\n", b[off]) >= 0 {
		off++
	}
	return off
}

// position turns a byte offset of b into a line and a column, from 1, as
// an editor shows them.
func position(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// jsonKind names the kind of a JSON value as messages do: "an object",
// "an array", "a string", "a number", "true or false" or "null".
func jsonKind(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	}
	return "a number"
}

// settingKeys returns the keys a struct of the file takes, in order,
// with each one's type.
func settingKeys(t reflect.Type) (names []string, types map[string]reflect.Type) {
	types = map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		types[name] = f.Type
	}
	slices.Sort(names)
	return names, types
}

// objectKeys returns the keys of the JSON object raw, sorted, and their
// values; none when raw is not an object.
func objectKeys(raw json.RawMessage) ([]string, map[string]json.RawMessage) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(obj)), obj
}

// unknownKeys returns a problem for each key of the object raw that the
// struct type t has no field for, named by its path in the file (prefix
// is the path of raw, such as "limits."), with the keys that t takes,
// and the same for the objects nested in raw. Keys are matched exactly,
// where encoding/json would take "Memory" for "memory".
func unknownKeys(prefix string, raw json.RawMessage, t reflect.Type) []string {
	names, types := settingKeys(t)
	keys, obj := objectKeys(raw)
	var probs []string
	for _, k := range keys {
		ft, ok := types[k]
		if !ok {
			where := "the file takes"
			if prefix != "" {
				where = strings.TrimSuffix(prefix, ".") + " takes"
			}
			guess := ""
			if g := closest(k, names); g != "" {
				guess = " (did you mean " + prefix + g + "?)"
			}
			probs = append(probs, fmt.Sprintf("%s%s is not a setting%s: %s %s", prefix, k, guess, where, strings.Join(names, ", ")))
			continue
		}
		if ft.Kind() == reflect.Struct {
			probs = append(probs, unknownKeys(prefix+k+".", obj[k], ft)...)
		}
	}
	return probs
}

// givenKeys returns the settings that the file's object raw gives, by
// their paths ("addr", "limits.disk").
func givenKeys(raw json.RawMessage) []string {
	var out []string
	var walk func(prefix string, raw json.RawMessage, t reflect.Type)
	walk = func(prefix string, raw json.RawMessage, t reflect.Type) {
		_, types := settingKeys(t)
		keys, obj := objectKeys(raw)
		for _, k := range keys {
			if ft := types[k]; ft != nil && ft.Kind() == reflect.Struct {
				walk(prefix+k+".", obj[k], ft)
				continue
			}
			out = append(out, prefix+k)
		}
	}
	walk("", raw, reflect.TypeFor[file]())
	return out
}

// closest returns the name of names that key is likely a misspelling of
// (at most two letters changed, added, removed or swapped), or "".
func closest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := spelling.Distance(strings.ToLower(key), n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// decodeProblem says what is wrong with a configuration file that does not
// decode, in the file's terms rather than Go's.
func decodeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := map[string]string{
			"limits.memory":   `a string (sizes such as "512M")`,
			"limits.disk":     `a string (sizes such as "512M")`,
			"limits.tmp":      `a string (sizes such as "512M")`,
			"limits.output":   `a string (sizes such as "512M")`,
			"limits.network":  `a string (hosts separated by commas, such as "pypi.org,*.pythonhosted.org", or "none")`,
			"network_private": `a list of addresses or prefixes, such as ["10.0.0.0/8", "192.168.1.20"]`,
		}[te.Field]
		if want == "" {
			want = map[string]string{"string": "a string", "int": "a whole number", "float64": "a number", "bool": "true or false"}[te.Type.String()]
		}
		if want == "" && te.Type.Kind() == reflect.Struct {
			want = "an object, such as {\"memory\": \"512M\"}"
		}
		if want == "" {
			want = te.Type.String()
		}
		article := "a"
		if strings.HasPrefix(te.Value, "a") || strings.HasPrefix(te.Value, "o") {
			article = "an"
		}
		return fmt.Sprintf("%s: got %s %s, want %s", te.Field, article, te.Value, want)
	}
	return err.Error()
}
