package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// docs/report.schema.json is written by hand, for people as much as for
// validators. These tests keep it honest: every JSON field of the Go model
// is in the schema with a compatible type, the schema has nothing the model
// lacks, and the golden reports validate against it.

const schemaPath = "../docs/report.schema.json"

type jsonSchema struct {
	Ref                  string                 `json:"$ref"`
	Type                 any                    `json:"type"`
	Properties           map[string]*jsonSchema `json:"properties"`
	Required             []string               `json:"required"`
	Items                *jsonSchema            `json:"items"`
	AdditionalProperties *jsonSchema            `json:"additionalProperties"`
	Defs                 map[string]*jsonSchema `json:"$defs"`
	Const                any                    `json:"const"`
	Minimum              *float64               `json:"minimum"`
	Maximum              *float64               `json:"maximum"`
	MinItems             *int                   `json:"minItems"`
	MaxItems             *int                   `json:"maxItems"`
	Format               string                 `json:"format"`
	Description          string                 `json:"description"`
}

func loadSchema(t *testing.T) *jsonSchema {
	t.Helper()
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var s jsonSchema
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	return &s
}

func (s *jsonSchema) resolve(root *jsonSchema) *jsonSchema {
	for s != nil && s.Ref != "" {
		s = root.Defs[strings.TrimPrefix(s.Ref, "#/$defs/")]
	}
	return s
}

func (s *jsonSchema) types() []string {
	switch v := s.Type.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

// jsonField is a struct field as encoding/json sees it.
type jsonField struct {
	name      string
	omitempty bool
	typ       reflect.Type
}

func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, omitempty: strings.Contains(opts, "omitempty"), typ: f.Type})
	}
	return out
}

var timeType = reflect.TypeFor[time.Time]()

// checkType reports where the schema s does not describe what encoding/json
// writes for a Go value of type typ; nullable says the value may be null.
func checkType(t *testing.T, root, s *jsonSchema, typ reflect.Type, nullable bool, path string) {
	t.Helper()
	s = s.resolve(root)
	if s == nil {
		t.Errorf("%s: schema has a dangling $ref", path)
		return
	}
	want := func(types ...string) {
		t.Helper()
		got := s.types()
		if got == nil && s.Const != nil {
			return // a constant says more than a type
		}
		for _, w := range types {
			if !slices.Contains(got, w) {
				t.Errorf("%s: schema type %v lacks %q (Go type %s)", path, got, w, typ)
			}
		}
		if nullable && !slices.Contains(got, "null") {
			t.Errorf("%s: Go writes null for an empty %s, but the schema type %v does not allow it", path, typ, got)
		}
	}
	switch {
	case typ == timeType:
		want("string")
		if s.Format != "date-time" {
			t.Errorf("%s: a time should have format date-time", path)
		}
		return
	case typ.Kind() == reflect.Pointer:
		checkType(t, root, s, typ.Elem(), nullable, path)
		return
	}
	switch typ.Kind() {
	case reflect.String:
		want("string")
	case reflect.Bool:
		want("boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want("integer")
	case reflect.Float32, reflect.Float64:
		want("number")
	case reflect.Interface:
		if s.Type != nil {
			t.Errorf("%s: Go type %s holds anything, but the schema restricts it to %v", path, typ, s.Type)
		}
	case reflect.Slice, reflect.Array:
		want("array")
		if s.Items == nil {
			t.Errorf("%s: array without items", path)
			return
		}
		if typ.Kind() == reflect.Array && (s.MinItems == nil || s.MaxItems == nil || *s.MinItems != typ.Len() || *s.MaxItems != typ.Len()) {
			t.Errorf("%s: a Go array of %d should have minItems = maxItems = %d", path, typ.Len(), typ.Len())
		}
		checkType(t, root, s.Items, typ.Elem(), false, path+"[]")
	case reflect.Map:
		want("object")
		if s.AdditionalProperties == nil {
			t.Errorf("%s: map without additionalProperties", path)
			return
		}
		checkType(t, root, s.AdditionalProperties, typ.Elem(), false, path+"{}")
	case reflect.Struct:
		want("object")
		fields := jsonFields(typ)
		var names, required []string
		for _, f := range fields {
			names = append(names, f.name)
			if !f.omitempty {
				required = append(required, f.name)
			}
			ps, ok := s.Properties[f.name]
			if !ok {
				t.Errorf("%s.%s: field of %s missing from the schema", path, f.name, typ)
				continue
			}
			if ps.resolve(root).Description == "" && ps.Description == "" {
				t.Errorf("%s.%s: no description", path, f.name)
			}
			// encoding/json writes null for a nil slice or map unless
			// the field is omitempty.
			k := f.typ.Kind()
			null := !f.omitempty && (k == reflect.Slice || k == reflect.Map || k == reflect.Pointer)
			checkType(t, root, ps, f.typ, null, path+"."+f.name)
		}
		for p := range s.Properties {
			if !slices.Contains(names, p) {
				t.Errorf("%s.%s: in the schema but not in %s", path, p, typ)
			}
		}
		sort.Strings(required)
		got := slices.Clone(s.Required)
		sort.Strings(got)
		if !slices.Equal(required, got) {
			t.Errorf("%s: schema requires %v, but Go always writes %v", path, got, required)
		}
	default:
		t.Errorf("%s: Go type %s has no schema mapping in this test", path, typ)
	}
}

func TestSchema_MatchesModel(t *testing.T) {
	root := loadSchema(t)
	checkType(t, root, root, reflect.TypeFor[Report](), false, "report")
	if c, _ := root.Properties["schema"].Const.(string); c != Schema {
		t.Errorf("schema.const = %q, want %q", c, Schema)
	}
}

// validate checks a decoded JSON value against the subset of JSON Schema
// the report schema uses.
func validate(root, s *jsonSchema, v any, path string) []string {
	s = s.resolve(root)
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if s.Const != nil && !reflect.DeepEqual(s.Const, v) {
		fail("%v is not the constant %v", v, s.Const)
	}
	if types := s.types(); types != nil {
		got := map[bool]string{true: "null"}[v == nil]
		switch x := v.(type) {
		case bool:
			got = "boolean"
		case string:
			got = "string"
		case float64:
			got = "number"
			if x == math.Trunc(x) && slices.Contains(types, "integer") {
				got = "integer"
			}
		case []any:
			got = "array"
		case map[string]any:
			got = "object"
		}
		if !slices.Contains(types, got) && !(got == "integer" && slices.Contains(types, "number")) {
			fail("%s, want %v", got, types)
			return errs
		}
	}
	switch x := v.(type) {
	case float64:
		if s.Minimum != nil && x < *s.Minimum {
			fail("%v below minimum %v", x, *s.Minimum)
		}
		if s.Maximum != nil && x > *s.Maximum {
			fail("%v above maximum %v", x, *s.Maximum)
		}
	case string:
		if s.Format == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				fail("not a date-time: %v", err)
			}
		}
	case []any:
		if s.MinItems != nil && len(x) < *s.MinItems || s.MaxItems != nil && len(x) > *s.MaxItems {
			fail("%d items", len(x))
		}
		if s.Items != nil {
			for i, e := range x {
				errs = append(errs, validate(root, s.Items, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case map[string]any:
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				fail("missing required %q", r)
			}
		}
		for k, e := range x {
			switch {
			case s.Properties[k] != nil:
				errs = append(errs, validate(root, s.Properties[k], e, path+"."+k)...)
			case s.AdditionalProperties != nil:
				errs = append(errs, validate(root, s.AdditionalProperties, e, path+"."+k)...)
			}
		}
	}
	return errs
}

func TestSchema_GoldenReportsValidate(t *testing.T) {
	root := loadSchema(t)
	for _, name := range []string{"report.golden.json", "rich.golden.json"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				t.Fatal(err)
			}
			for _, e := range validate(root, root, v, "report") {
				t.Error(e)
			}
		})
	}
}

// TestSchema_Rejects makes sure the validator above is not vacuous.
func TestSchema_Rejects(t *testing.T) {
	root := loadSchema(t)
	tests := []struct {
		name, doc, want string
	}{
		{"missing required", `{"schema":"resctl.report/v1"}`, `missing required "scenario"`},
		{"wrong schema", `{"schema":"resctl.report/v2"}`, "is not the constant"},
		{"wrong type", `{"seed":"42"}`, "report.seed: string"},
		{"bad rate", `{"phases":[{"success_rate":1.5}]}`, "above maximum"},
		{"bad point", `{"metrics":[{"points":[[1,2,3]]}]}`, "3 items"},
		{"bad time", `{"started_at":"yesterday"}`, "not a date-time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.doc), &v); err != nil {
				t.Fatal(err)
			}
			errs := strings.Join(validate(root, root, v, "report"), "\n")
			if !strings.Contains(errs, tt.want) {
				t.Errorf("errors %q lack %q", errs, tt.want)
			}
		})
	}
}
