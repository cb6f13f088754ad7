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
	if err == nil || !strings.Contains(err.Error(), `log_level "loud"`) || !strings.Contains(err.Error(), "memory") {
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
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "run_reuse 65 is out of range") {
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

// TestMetricsPublic checks the setting that lets a scraper read /metrics
// without a key: off by default, on from the file, the environment
// over the file.
func TestMetricsPublic(t *testing.T) {
	if Default().MetricsPublic {
		t.Fatal("metrics are public by default")
	}
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"metrics_public": true}`), 0o644)
	c, err := Load(env(map[string]string{"COVE_CONFIG": file}))
	if err != nil || !c.MetricsPublic {
		t.Fatalf("metrics_public true in the file: %v %v", c.MetricsPublic, err)
	}
	c, err = Load(env(map[string]string{"COVE_CONFIG": file, "COVE_METRICS_PUBLIC": "false"}))
	if err != nil || c.MetricsPublic {
		t.Fatalf("COVE_METRICS_PUBLIC=false over the file: %v %v", c.MetricsPublic, err)
	}
	_, err = Load(env(map[string]string{"COVE_METRICS_PUBLIC": "yes please"}))
	if want := `COVE_METRICS_PUBLIC: "yes please" is not a boolean (use true or false)`; err == nil || cove.ErrorMessage(err) != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

// TestLogFormat checks log_format: text by default, json on request,
// anything else refused naming where it came from.
func TestLogFormat(t *testing.T) {
	if f := Default().LogFormat; f != "text" {
		t.Fatalf("default log format %q", f)
	}
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"log_format": "json"}`), 0o644)
	c, err := Load(env(map[string]string{"COVE_CONFIG": file}))
	if err != nil || c.LogFormat != "json" || c.Validate() != nil {
		t.Fatalf("log_format json: %q %v %v", c.LogFormat, err, c.Validate())
	}
	c, _ = Load(env(map[string]string{"COVE_CONFIG": file, "COVE_LOG_FORMAT": "yaml"}))
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `COVE_LOG_FORMAT "yaml": use text or json`) {
		t.Fatalf("COVE_LOG_FORMAT=yaml: %v", err)
	}
}

// TestFileFormProblems checks the problems of a file's form: each says
// where in the file, in the file's terms, without Go's "json:".
func TestFileFormProblems(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	for _, tc := range []struct{ name, file, want string }{
		{"unknown_nested_key", `{"limits":{"memroy":"256M"}}`,
			`limits.memroy is not a setting (did you mean limits.memory?): limits takes cpus, disk, memory, network, open_files, output, pids, timeout, tmp`},
		{"unknown_keys_together", `{"limits":{"size":"1G"},"loglevel":"info"}`,
			`limits.size is not a setting: limits takes cpus, disk, memory, network, open_files, output, pids, timeout, tmp; loglevel is not a setting (did you mean log_level?): the file takes addr, `},
		{"case_matters", `{"Log_Level":"info"}`, `Log_Level is not a setting (did you mean log_level?)`},
		{"unknown_key_and_bad_type", `{"limits":{"memroy":"1G"},"pool_size":"2"}`, `limits.memroy is not a setting (did you mean limits.memory?): limits takes cpus, disk, memory, network, open_files, output, pids, timeout, tmp; pool_size: got a string, want a whole number`},
		{"trailing_text", "{\"log_level\": \"info\"} trailing\n", `more text after the settings' object, at line 1, column 23: the file holds one JSON object, {...}`},
		{"second_object", "{\"log_level\": \"info\"}\n{\"pool_size\": 1}\n", `more text after the settings' object, at line 2, column 1`},
		{"limits_not_an_object", `{"limits": "256M"}`, `limits: got a string, want an object, such as {"memory": "512M"}`},
		{"not_an_object", `["log_level"]`, `the file holds an array: write the settings as one JSON object, such as {"log_level": "info"}`},
		{"syntax", "{\n  \"log_level\": \"info\",\n  pool_size: 1\n}", `not valid JSON at line 3, column 3: invalid character 'p' looking for beginning of object key string`},
		{"truncated", "{\"limits\": {\"memory\": \"1G\"}\n", `not valid JSON: the file ends (line 2, column 1) before its object does: is a "}" or a quote missing?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(file, []byte(tc.file), 0o644)
			_, err := Load(env(map[string]string{"COVE_CONFIG": file}))
			prefix := "config file " + file + ": "
			msg := cove.ErrorMessage(err)
			if err == nil || !strings.HasPrefix(msg, prefix+tc.want) || strings.Contains(strings.TrimPrefix(msg, prefix), "json:") {
				t.Fatalf("got %v\nwant %s%s", err, prefix, tc.want)
			}
		})
	}
	// An empty file is an empty configuration, as {} is.
	for _, empty := range []string{"", " \n\t\n"} {
		os.WriteFile(file, []byte(empty), 0o644)
		c, err := Load(env(map[string]string{"COVE_CONFIG": file}))
		if err != nil || c.PoolSize != Default().PoolSize {
			t.Fatalf("empty file %q: %v", empty, err)
		}
	}
}

// TestProblemsNameTheirSource checks that a value that reads but is out
// of range names the setting as its source gave it: the key of the file,
// the variable or the flag; and that each duration is named on its own.
func TestProblemsNameTheirSource(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"addr": "nope", "pool_size": 100, "ttl": "-5s"}`), 0o644)
	c, err := Load(env(map[string]string{"COVE_CONFIG": file, "COVE_LOG_LEVEL": "verbose", "COVE_DRAIN_TIMEOUT": "-1"}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	for _, want := range []string{
		`config file ` + file + `: addr "nope": use host:port, such as 127.0.0.1:7070 or 0.0.0.0:7070`,
		`config file ` + file + `: pool_size 100 is out of range (0 to 64 idle sandboxes)`,
		`config file ` + file + `: ttl -5s must not be negative`,
		`COVE_DRAIN_TIMEOUT -1s must not be negative`,
		`COVE_LOG_LEVEL "verbose": use debug, info, warn or error`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "idle_timeout") || strings.Contains(err.Error(), "--addr") {
		t.Errorf("error %v names a setting that is fine, or a flag that was not given", err)
	}
	// A flag wins and is named as the flag.
	c.Addr = "localhost"
	c.SetBy("addr", "--addr")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `--addr "localhost": use host:port`) {
		t.Errorf("flag: %v", err)
	}
	if !c.Given("ttl") || c.Given("idle_timeout") {
		t.Errorf("Given: ttl %v, idle_timeout %v", c.Given("ttl"), c.Given("idle_timeout"))
	}
	// A copy made before does not see what was set after.
	d := Default()
	e := d
	e.SetBy("addr", "--addr")
	if d.Given("addr") {
		t.Error("SetBy changed a copy made before")
	}
}

// TestLoadReportsEverythingAtOnce checks that when a setting does not
// read, the others that read but are wrong are reported with it.
func TestLoadReportsEverythingAtOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"pool_size": 100, "log_level": "verbose"}`), 0o644)
	_, err := Load(env(map[string]string{"COVE_CONFIG": file, "COVE_MEMORY": "lots"}))
	for _, want := range []string{"COVE_MEMORY", "pool_size 100", `log_level "verbose"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
