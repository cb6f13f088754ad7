// Package config holds cove's one configuration struct: embedded defaults,
// then a JSON file, then COVE_* environment variables, then flags (applied
// by the CLI). Validate reports every problem at once.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/cove-sandbox/cove"
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
	// Addr is where `cove serve` listens.
	Addr string
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
	DataDir      *string         `json:"data_dir"`
	RunDir       *string         `json:"run_dir"`
	Landlock     *bool           `json:"landlock"`
	LogLevel     *string         `json:"log_level"`
	Addr         *string         `json:"addr"`
	PoolSize     *int            `json:"pool_size"`
	RunReuse     *int            `json:"run_reuse"`
	IdleTimeout  json.RawMessage `json:"idle_timeout"`
	TTL          json.RawMessage `json:"ttl"`
	DrainTimeout json.RawMessage `json:"drain_timeout"`
	AIModel      *string         `json:"ai_model"`
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

// LoadFile applies the JSON configuration file at path to c.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return cove.Errorf(cove.CodeInvalid, "cannot read config file %s: %v", path, err)
	}
	before := c.Limits
	var f file
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return cove.Errorf(cove.CodeInvalid, "config file %s: %s", path, decodeProblem(err))
	}
	var probs []string
	setStr := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setStr(&c.DataDir, f.DataDir)
	setStr(&c.RunDir, f.RunDir)
	setStr(&c.LogLevel, f.LogLevel)
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
func (c *Config) ApplyEnv(getenv func(string) string) error {
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
	if v := getenv("COVE_LANDLOCK"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			probs = append(probs, fmt.Sprintf("COVE_LANDLOCK: %q is not a boolean (use true or false)", v))
		}
		c.Landlock = b
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
		}
		c.Limits.CPUs = f
	}
	for _, kv := range []struct {
		name string
		dst  *int
	}{{"COVE_PIDS", &c.Limits.Pids}, {"COVE_OPEN_FILES", &c.Limits.OpenFiles}, {"COVE_POOL_SIZE", &c.PoolSize}, {"COVE_RUN_REUSE", &c.RunReuse}} {
		if v := getenv(kv.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				probs = append(probs, fmt.Sprintf("%s: %q is not a whole number", kv.name, v))
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

// Validate reports every problem at once.
func (c Config) Validate() error {
	var probs []string
	if c.DataDir == "" {
		probs = append(probs, "no data directory: set COVE_DATA_DIR")
	}
	if c.RunDir == "" {
		probs = append(probs, "no run directory: set COVE_RUN_DIR")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		probs = append(probs, fmt.Sprintf("log level %q: use debug, info, warn or error", c.LogLevel))
	}
	if err := c.Limits.Validate(); err != nil {
		probs = append(probs, cove.ErrorMessage(err))
	}
	if c.PoolSize < 0 || c.PoolSize > 64 {
		probs = append(probs, fmt.Sprintf("pool size %d is out of range (0 to 64)", c.PoolSize))
	}
	if c.RunReuse < 0 || c.RunReuse > 64 {
		probs = append(probs, fmt.Sprintf("run reuse %d is out of range (0 to 64 sandboxes kept per key)", c.RunReuse))
	}
	if c.IdleTimeout < 0 || c.TTL < 0 || c.DrainTimeout < 0 {
		probs = append(probs, "idle timeout, TTL and drain timeout must not be negative")
	}
	if u := c.AI.BaseURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			probs = append(probs, fmt.Sprintf("ANTHROPIC_BASE_URL %q: use an http or https URL such as https://gateway.example.com", u))
		}
	}
	if c.Limits.MemoryBytes == 0 || c.Limits.Pids == 0 || c.Limits.DiskBytes == 0 || c.Limits.Timeout == 0 {
		probs = append(probs, "default limits must not be zero")
	}
	if len(probs) > 0 {
		return cove.Errorf(cove.CodeInvalid, "invalid configuration: %s", strings.Join(probs, "; "))
	}
	return nil
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
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = cove.ErrorMessage(err)
		}
		return c, cove.Errorf(cove.CodeInvalid, "%s", strings.Join(msgs, "; "))
	}
	return c, nil
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
		if want == "" {
			want = te.Type.String()
		}
		article := "a"
		if strings.HasPrefix(te.Value, "a") || strings.HasPrefix(te.Value, "o") {
			article = "an"
		}
		return fmt.Sprintf("%s: got %s %s, want %s", te.Field, article, te.Value, want)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, err)
	}
	return err.Error()
}
