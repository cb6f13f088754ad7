package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLayering(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.json")
	os.WriteFile(file, []byte(`{"data_dir": "/from/file", "limits": {"memory": "256M", "timeout": "10s", "pids": 64}}`), 0o644)
	c, err := Load(env(map[string]string{"COVE_CONFIG": file, "COVE_MEMORY": "1G", "COVE_LANDLOCK": "false"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/file" || c.Limits.MemoryBytes != 1<<30 || c.Limits.Timeout != 10*time.Second || c.Limits.Pids != 64 || c.Landlock {
		t.Fatalf("got %+v", c)
	}
	if c.Limits.DiskBytes != cove.DefaultLimits().DiskBytes {
		t.Fatalf("unset limit lost its default: %+v", c.Limits)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsAreReportedTogether(t *testing.T) {
	_, err := Load(env(map[string]string{"COVE_MEMORY": "lots", "COVE_TIMEOUT": "soon", "COVE_PIDS": "many"}))
	if cove.ErrorCode(err) != cove.CodeInvalid {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"COVE_MEMORY", "COVE_TIMEOUT", "COVE_PIDS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	c := Default()
	c.LogLevel = "loud"
	c.Limits.MemoryBytes = 1
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "log level") || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("want both problems, got %v", err)
	}
}

func TestUnknownFileKeyIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"limts": {}}`), 0o644)
	if _, err := Load(env(map[string]string{"COVE_CONFIG": file})); err == nil || !strings.Contains(err.Error(), "limts") {
		t.Fatalf("got %v", err)
	}
}

func TestRunReuse(t *testing.T) {
	if n := Default().RunReuse; n != 4 {
		t.Fatalf("default run_reuse %d, want 4", n)
	}
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"run_reuse": 0}`), 0o644)
	c, err := Load(env(map[string]string{"COVE_CONFIG": file}))
	if err != nil || c.RunReuse != 0 {
		t.Fatalf("run_reuse 0 from the file: %d %v", c.RunReuse, err)
	}
	c, err = Load(env(map[string]string{"COVE_CONFIG": file, "COVE_RUN_REUSE": "8"}))
	if err != nil || c.RunReuse != 8 {
		t.Fatalf("COVE_RUN_REUSE=8 over the file: %d %v", c.RunReuse, err)
	}
	if _, err := Load(env(map[string]string{"COVE_RUN_REUSE": "some"})); err == nil || !strings.Contains(err.Error(), "COVE_RUN_REUSE") {
		t.Fatalf("COVE_RUN_REUSE=some: %v", err)
	}
	c = Default()
	c.RunReuse = 65
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "run reuse 65 is out of range") {
		t.Fatalf("run_reuse 65: %v", err)
	}
}

// Durations are read as the API reads them, in the file and in the
// environment: a Go duration or a number of seconds.
func TestDurationsTakeSecondsToo(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"ttl": 90, "idle_timeout": "2m", "limits": {"timeout": 1.5}}`), 0o644)
	c, err := Load(env(map[string]string{"COVE_CONFIG": file, "COVE_DRAIN_TIMEOUT": "7"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.TTL != 90*time.Second || c.IdleTimeout != 2*time.Minute || c.Limits.Timeout != 1500*time.Millisecond || c.DrainTimeout != 7*time.Second {
		t.Fatalf("got ttl %v, idle %v, timeout %v, drain %v", c.TTL, c.IdleTimeout, c.Limits.Timeout, c.DrainTimeout)
	}
	os.WriteFile(file, []byte(`{"ttl": "soon", "limits": {"timeout": true}}`), 0o644)
	_, err = Load(env(map[string]string{"COVE_CONFIG": file, "COVE_TIMEOUT": "5x"}))
	for _, want := range []string{`ttl: "soon" is not a duration`, `limits.timeout: true is not a duration`, `COVE_TIMEOUT: "5x" is not a duration`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %s", err, want)
		}
	}
}

// A file that does not decode, or is missing, is reported once, in the
// file's terms.
func TestFileProblemsInTheFilesTerms(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	for _, tc := range []struct{ file, want string }{
		{`{"limits": {"memory": 512}}`, `limits.memory: got a number, want a string (sizes such as "512M")`},
		{`{"limits": {"network": ["pypi.org"]}}`, `limits.network: got an array, want a string (hosts separated by commas, such as "pypi.org,*.pythonhosted.org", or "none")`},
		{`{"network_private": "10.0.0.0/8"}`, `network_private: got a string, want a list of addresses or prefixes, such as ["10.0.0.0/8", "192.168.1.20"]`},
		{`{"data_dir": {}}`, `data_dir: got an object, want a string`},
		{`{"pool_size": "2"}`, `pool_size: got a string, want a whole number`},
	} {
		os.WriteFile(file, []byte(tc.file), 0o644)
		_, err := Load(env(map[string]string{"COVE_CONFIG": file}))
		if err == nil || !strings.HasSuffix(err.Error(), ": "+tc.want) || strings.Contains(err.Error(), "Go struct") {
			t.Errorf("%s: got %v, want %s", tc.file, err, tc.want)
		}
	}
	missing := filepath.Join(t.TempDir(), "nofile.json")
	_, err := Load(env(map[string]string{"COVE_CONFIG": missing}))
	if err == nil || err.Error() != "cannot read config file "+missing+": no such file or directory" {
		t.Fatalf("got %q", err)
	}
}

func TestNetwork(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"limits": {"network": "PyPI.org, *.pythonhosted.org"}, "network_private": ["10.0.0.0/8", "192.168.1.20"]}`), 0o644)
	c, err := Load(env(map[string]string{"COVE_CONFIG": file}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.Network != "pypi.org,*.pythonhosted.org" || len(c.NetworkPrivate) != 2 || c.NetworkPrivate[1].String() != "192.168.1.20/32" {
		t.Fatalf("got network %q, private %v", c.Limits.Network, c.NetworkPrivate)
	}
	c, err = Load(env(map[string]string{"COVE_CONFIG": file, "COVE_NETWORK": "none", "COVE_NETWORK_PRIVATE": "127.0.0.2, fd00::/8"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.Network != "none" || len(c.NetworkPrivate) != 2 || c.NetworkPrivate[1].String() != "fd00::/8" {
		t.Fatalf("the environment did not override the file: %q %v", c.Limits.Network, c.NetworkPrivate)
	}
	os.WriteFile(file, []byte(`{"limits": {"network": "https://pypi.org"}, "network_private": ["lan"]}`), 0o644)
	_, err = Load(env(map[string]string{"COVE_CONFIG": file}))
	for _, want := range []string{`limits.network "https://pypi.org": give a host, not a URL`, `network_private: "lan" is neither an address nor a prefix`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	// The environment names its variable where the file names its
	// setting, and the CLI its flag.
	_, err = Load(env(map[string]string{"COVE_NETWORK": "https://pypi.org"}))
	if want := `COVE_NETWORK "https://pypi.org": give a host, not a URL`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}

// TestOutOfRangeLimitNamesItsSource checks that a limit out of range says
// which variable or key of the file gave it, not only which limit it is.
func TestOutOfRangeLimitNamesItsSource(t *testing.T) {
	_, err := Load(env(map[string]string{"COVE_TIMEOUT": "0.0001", "COVE_OPEN_FILES": "10"}))
	for _, want := range []string{"COVE_TIMEOUT: timeout 100µs is out of range (1ms to 24h)", "COVE_OPEN_FILES: open files 10 is out of range (64 to 1048576)"} {
		if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(cove.ErrorMessage(err), want) {
			t.Errorf("got %v, want %q in it", err, want)
		}
	}
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"limits": {"output": "20M", "tmp": "1K"}}`), 0o644)
	_, err = Load(env(map[string]string{"COVE_CONFIG": file}))
	for _, want := range []string{"config file " + file + ": ", "limits.output: output limit 20 MiB is out of range", "limits.tmp: tmp size 1 KiB is below the minimum of 1 MiB"} {
		if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(cove.ErrorMessage(err), want) {
			t.Errorf("got %v, want %q in it", err, want)
		}
	}
}
