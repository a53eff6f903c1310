package scenario_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/scenario"
)

// Every key the decoder accepts appears in the schema, and the schema says
// unknown keys are not allowed, like the decoder.
func TestJSONSchema_CoversScenarioKeys(t *testing.T) {
	raw, err := scenario.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties           map[string]json.RawMessage `json:"properties"`
		AdditionalProperties bool                       `json:"additionalProperties"`
		Defs                 map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "seed", "target", "proxy", "proxies", "load", "phases", "slas", "scrape", "output"} {
		if _, ok := s.Properties[k]; !ok {
			t.Errorf("schema lacks top-level key %q", k)
		}
	}
	if s.AdditionalProperties {
		t.Error("schema allows unknown top-level keys")
	}
	for _, k := range []string{"fault_http_latency", "fault_http_abort", "fault_tcp_blackhole", "fault_runtime_goroutines"} {
		if _, ok := s.Defs[k]; !ok {
			t.Errorf("schema lacks %s", k)
		}
	}
}

// schemaValidator compiles the generated schema with a JSON Schema
// validator, as an editor's language server does.
func schemaValidator(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := scenario.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(scenario.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(scenario.SchemaID)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// checkSchema validates a YAML scenario against the schema, as written.
func checkSchema(t *testing.T, s *jsonschema.Schema, data []byte) error {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(inst)
}

// Every example scenario, and every valid one of the tests, passes the
// schema: an editor never flags a file resctl runs.
func TestJSONSchema_AcceptsTheExamples(t *testing.T) {
	s := schemaValidator(t)
	files, err := filepath.Glob("../testdata/scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example scenarios: %v", err)
	}
	more, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range append(files, more...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := scenario.Parse(f, data); err != nil {
			continue // a file of the tests that is meant to be wrong
		}
		if err := checkSchema(t, s, data); err != nil {
			t.Errorf("%s: the schema rejects it: %v", f, err)
		}
	}
}

// The schema rejects what resctl validate rejects wherever a schema can
// say it: an editor flags the mistake as it is typed.
func TestJSONSchema_RejectsWhatValidateRejects(t *testing.T) {
	s := schemaValidator(t)
	const good = `name: ok
target: {builtin: demo}
proxy: {protocol: http}
load: {rate: 10/s, requests: [{path: /}]}
phases:
  - {name: only, duration: 1s}
slas:
  - {name: fine, expect: success_rate >= 99%}
`
	if _, err := scenario.Parse("good.yaml", []byte(good)); err != nil {
		t.Fatalf("the base scenario is invalid: %v", err)
	}
	if err := checkSchema(t, s, []byte(good)); err != nil {
		t.Fatalf("the schema rejects the base scenario: %v", err)
	}
	tests := map[string][2]string{
		"unknown protocol":         {"proxy: {protocol: http}", "proxy: {protocol: htp}"},
		"phase without a duration": {"{name: only, duration: 1s}", "{name: only}"},
		"phase of no time":         {"{name: only, duration: 1s}", "{name: only, duration: 0s}"},
		"SLA without expect":       {"{name: fine, expect: success_rate >= 99%}", "{name: fine}"},
		"no target":                {"target: {builtin: demo}", "target: {}"},
		"builtin and url":          {"target: {builtin: demo}", "target: {builtin: demo, url: \"http://127.0.0.1:1\"}"},
		"unknown builtin":          {"target: {builtin: demo}", "target: {builtin: dmeo}"},
		"no requests":              {"requests: [{path: /}]", "timeout: 1s"},
		"unknown output format":    {"slas:", "output: {formats: [pdf]}\nslas:"},
		"unknown key":              {"proxy: {protocol: http}", "proxy: {protocl: http}"},
		"no name":                  {"name: ok\n", ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			data := []byte(strings.Replace(good, tt[0], tt[1], 1))
			if _, err := scenario.Parse("bad.yaml", data); err == nil {
				t.Fatalf("validate accepts it:\n%s", data)
			}
			if err := checkSchema(t, s, data); err == nil {
				t.Errorf("the schema accepts it:\n%s", data)
			}
		})
	}
}
