package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

type openAPIDoc struct {
	OpenAPI  string                                `json:"openapi"`
	Security []map[string][]string                 `json:"security"`
	Paths    map[string]map[string]json.RawMessage `json:"paths"`
	Comp     struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		} `json:"schemas"`
	} `json:"components"`
}

type operation struct {
	OperationID string                     `json:"operationId"`
	Security    *[]map[string][]string     `json:"security"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Parameters  []json.RawMessage          `json:"parameters"`
}

func loadDoc(t *testing.T) *openAPIDoc {
	t.Helper()
	var d openAPIDoc
	if err := json.Unmarshal(openAPIDocument, &d); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return &d
}

// docPath turns a mux pattern into an OpenAPI path.
func docPath(pattern string) string { return strings.ReplaceAll(pattern, "{path...}", "{path}") }

// TestOpenAPIMatchesRoutes checks that every route of the table is in the
// document and every operation of the document is in the table.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	d := loadDoc(t)
	inTable := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + docPath(rt.Pattern)
		if inTable[key] {
			t.Errorf("route %s twice in the table", key)
		}
		inTable[key] = true
		ops, ok := d.Paths[docPath(rt.Pattern)]
		if _, has := ops[strings.ToLower(rt.Method)]; !ok || !has {
			t.Errorf("route %s is missing from openapi.json", key)
		}
	}
	for p, ops := range d.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			if key := strings.ToUpper(m) + " " + p; !inTable[key] {
				t.Errorf("openapi.json has %s, which no route serves", key)
			}
		}
	}
}

// TestOpenAPIPathsServed checks that the mux routes every operation of
// the document to the route it describes, rather than answering 404 or
// 405.
func TestOpenAPIPathsServed(t *testing.T) {
	s := newServer(&fakeService{}, Options{})
	d := loadDoc(t)
	fill := strings.NewReplacer("{id}", "sb1", "{pid}", "7", "{path}", "dir/file.txt")
	for p, ops := range d.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			method := strings.ToUpper(m)
			req := httptest.NewRequest(method, fill.Replace(p), nil)
			_, pattern := s.mux.Handler(req)
			want := ""
			for _, rt := range routes {
				if rt.Method == method && docPath(rt.Pattern) == p {
					want = rt.Method + " " + rt.Pattern
				}
			}
			if pattern == "" || pattern != want {
				t.Errorf("%s %s goes to %q, want %q", method, p, pattern, want)
			}
		}
	}
}

// TestOpenAPIDocument checks the document's own consistency: references
// resolve, operations are complete, security matches the routes' access.
func TestOpenAPIDocument(t *testing.T) {
	d := loadDoc(t)
	if d.OpenAPI != "3.1.0" || len(d.Security) != 1 || d.Security[0]["bearer"] == nil {
		t.Fatalf("openapi %q, security %v", d.OpenAPI, d.Security)
	}
	var all any
	json.Unmarshal(openAPIDocument, &all)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if !resolves(all, ref) {
					t.Errorf("$ref %s does not resolve", ref)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(all)
	ids := map[string]bool{}
	for _, rt := range routes {
		var op operation
		if err := json.Unmarshal(d.Paths[docPath(rt.Pattern)][strings.ToLower(rt.Method)], &op); err != nil {
			t.Fatalf("%s %s: %v", rt.Method, rt.Pattern, err)
		}
		name := rt.Method + " " + rt.Pattern
		if op.OperationID == "" || ids[op.OperationID] {
			t.Errorf("%s: operationId %q missing or not unique", name, op.OperationID)
		}
		ids[op.OperationID] = true
		public := rt.Access == accessPublic
		if public != (op.Security != nil && len(*op.Security) == 0) {
			t.Errorf("%s: security in the document does not match the route's access", name)
		}
		if _, ok := op.Responses["401"]; !public && !ok {
			t.Errorf("%s: no 401 response", name)
		}
		if _, ok := op.Responses["500"]; !public && !ok {
			t.Errorf("%s: no 500 response", name)
		}
	}
}

func resolves(doc any, ref string) bool {
	v := doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

// TestOpenAPISchemasMatchWire checks that the document's schemas have
// exactly the JSON fields of the wire types.
func TestOpenAPISchemasMatchWire(t *testing.T) {
	d := loadDoc(t)
	types := map[string]any{
		"Error": wire.ErrorBody{}, "ErrorDetail": wire.ErrorDetail{}, "Limits": wire.Limits{},
		"CreateSandbox": wire.CreateSandbox{}, "Sandbox": wire.Sandbox{}, "SandboxList": wire.SandboxList{}, "UpdateSandbox": wire.UpdateSandbox{},
		"ExecRequest": wire.ExecRequest{}, "CodeRequest": wire.CodeRequest{}, "RunRequest": wire.RunRequest{},
		"Result": wire.Result{}, "Event": wire.Event{},
		"ProcessRequest": wire.ProcessRequest{}, "Process": wire.Process{}, "ProcessList": wire.ProcessList{}, "ProcessLogs": wire.ProcessLogs{},
		"SignalRequest": wire.SignalRequest{}, "PTYMessage": wire.PTYMessage{},
		"FileInfo": wire.FileInfo{}, "FileList": wire.FileList{}, "UploadResult": wire.UploadResult{},
		"PathRequest": wire.PathRequest{}, "MoveRequest": wire.MoveRequest{}, "ChmodRequest": wire.ChmodRequest{},
		"SearchRequest": wire.SearchRequest{}, "SearchResult": wire.SearchResult{}, "SearchMatch": cove.SearchMatch{},
		"ReplaceRequest": wire.ReplaceRequest{}, "ReplaceResult": cove.ReplaceResult{}, "ReplaceResults": wire.ReplaceResults{},
		"Quota": wire.Quota{}, "KeyRequest": wire.KeyRequest{}, "Key": wire.Key{}, "NewKey": wire.NewKey{}, "KeyList": wire.KeyList{},
		"Health": wire.Health{}, "Version": wire.Version{},
	}
	for name, v := range types {
		schema, ok := d.Comp.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		var doc []string
		for p := range schema.Properties {
			doc = append(doc, p)
		}
		sort.Strings(doc)
		goFields := jsonFields(reflect.TypeOf(v))
		if !slices.Equal(doc, goFields) {
			t.Errorf("schema %s has %v, the Go type %T has %v", name, doc, v, goFields)
		}
		for _, r := range schema.Required {
			if !slices.Contains(goFields, r) {
				t.Errorf("schema %s requires %s, which it does not have", name, r)
			}
		}
	}
}

// jsonFields lists the JSON names of a struct's fields, with those of
// embedded structs.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIErrorCodes checks that the document lists every error code of
// cove.Codes, and no other, with the status the table gives it.
func TestOpenAPIErrorCodes(t *testing.T) {
	var doc struct {
		Info struct {
			Description string `json:"description"`
		} `json:"info"`
		Components struct {
			Schemas struct {
				ErrorDetail struct {
					Properties struct {
						Code struct {
							Enum []string `json:"enum"`
						} `json:"code"`
					} `json:"properties"`
				} `json:"ErrorDetail"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	var want []string
	for code, info := range cove.Codes {
		want = append(want, string(code))
		if s := fmt.Sprintf("%s %d", code, info.HTTPStatus); !strings.Contains(doc.Info.Description, s) {
			t.Errorf("the description does not say %q", s)
		}
	}
	got := slices.Clone(doc.Components.Schemas.ErrorDetail.Properties.Code.Enum)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("ErrorDetail.code lists %v, want %v", got, want)
	}
}
