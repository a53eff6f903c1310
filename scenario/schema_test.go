package scenario_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/resctl/resctl/scenario"
)

var update = flag.Bool("update", false, "rewrite docs/scenario.schema.json")

// The checked-in schema is what JSONSchema generates: regenerate it with
// go test ./scenario -run TestJSONSchema -update.
func TestJSONSchema_InSync(t *testing.T) {
	got, err := scenario.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const path = "../docs/scenario.schema.json"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: run go test ./scenario -run TestJSONSchema -update", path)
	}
}

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
