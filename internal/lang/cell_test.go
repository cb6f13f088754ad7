package lang

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestTranspileCell(t *testing.T) {
	code, sm, err := TranspileCell("cell1.ts", "import fs from 'fs';\ntype N = number;\nconst x: N = await Promise.resolve(2);\nx + 1\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`import fs from "fs"`, "await Promise.resolve(2)", "const x = "} {
		if !strings.Contains(code, want) {
			t.Errorf("transpiled cell lacks %q:\n%s", want, code)
		}
	}
	if strings.Contains(code, "type N") || strings.Contains(code, ": N") {
		t.Errorf("types survived:\n%s", code)
	}
	var m struct {
		Version  int      `json:"version"`
		Sources  []string `json:"sources"`
		Mappings string   `json:"mappings"`
	}
	if err := json.Unmarshal([]byte(sm), &m); err != nil {
		t.Fatalf("source map %q: %v", sm, err)
	}
	if m.Version != 3 || len(m.Sources) != 1 || m.Sources[0] != "cell1.ts" || m.Mappings == "" {
		t.Errorf("source map %+v", m)
	}
}

func TestTranspileCellSyntaxError(t *testing.T) {
	_, _, err := TranspileCell("cell2.ts", "const a = 1;\nconst b = ;\n")
	var se *CellSyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *CellSyntaxError", err)
	}
	if se.Line != 2 || se.Text == "" || !strings.Contains(se.Message, "cell2.ts:2:") {
		t.Errorf("syntax error %+v", se)
	}
}
