package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
)

// TestAIConfig checks the AI settings: the model from the file or
// COVE_AI_MODEL, the key and base URL from the Anthropic variables, a
// base URL that is not a URL refused, and the key kept out of String.
func TestAIConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"ai_model": "claude-from-file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"COVE_CONFIG": path, "COVE_DATA_DIR": dir}
	c, err := Load(func(k string) string { return env[k] })
	if err != nil || c.AI.Model != "claude-from-file" || c.AI.APIKey != "" || c.AI.BaseURL != "" {
		t.Fatalf("%v %+v", err, c.AI)
	}
	env["COVE_AI_MODEL"] = "claude-from-env"
	env["ANTHROPIC_API_KEY"] = " sk-ant-secret\n"
	env["ANTHROPIC_BASE_URL"] = "https://gateway.example.com/anthropic"
	c, err = Load(func(k string) string { return env[k] })
	if err != nil || c.AI.Model != "claude-from-env" || c.AI.APIKey != "sk-ant-secret" || c.AI.BaseURL != "https://gateway.example.com/anthropic" {
		t.Fatalf("%v %+v", err, c.AI)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if s := c.AI.String(); strings.Contains(s, "secret") || !strings.Contains(s, "api_key=set") {
		t.Errorf("String %q", s)
	}
	c.AI.BaseURL = "gateway.example.com"
	if err := c.Validate(); cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(cove.ErrorMessage(err), `ANTHROPIC_BASE_URL "gateway.example.com": use an http or https URL`) {
		t.Errorf("bad base URL: %v", err)
	}
}
