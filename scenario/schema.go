package scenario

import (
	_ "embed"
	"encoding"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/resctl/resctl/check"
	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/inject/netem"
	"github.com/resctl/resctl/inject/process"
	"github.com/resctl/resctl/quantity"
)

// SchemaID names the JSON Schema of scenario files.
const SchemaID = "https://resctl.dev/schema/scenario.json"

// JSONSchema returns the JSON Schema (draft 2020-12) of the scenario file,
// generated from the Go types so that it cannot drift from what Parse
// accepts: editors use it to complete and check scenarios. Every key has
// its Go field's doc comment as its description (schema_docs.json, drawn
// from the source by go test ./scenario -run TestJSONSchema -update), its
// default and, where the values are few, their list; the keys validation
// requires are required. Ranges that depend on other keys (jitter at most
// delay, a phase named by `during`) are checked by resctl validate only.
func JSONSchema() ([]byte, error) {
	docs, err := embeddedDocs()
	if err != nil {
		return nil, err
	}
	b, _, err := jsonSchema(docs)
	return b, err
}

// jsonSchema is the schema with the descriptions docs gives: the doc
// comment of each Go type and field, by typeKey and fieldKey; and the
// keys of docs it looked up.
func jsonSchema(docs map[string]string) ([]byte, map[string]bool, error) {
	g := &schemaGen{defs: map[string]any{}, docs: docs, looked: map[string]bool{}}
	def := defaults()
	root := g.object(reflect.TypeFor[Scenario](), reflect.ValueOf(&def).Elem())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "resctl scenario"
	root["description"] = g.doc(typeKey(reflect.TypeFor[Scenario]()))
	root["$defs"] = g.defs
	b, err := json.MarshalIndent(root, "", "  ")
	return b, g.looked, err
}

type schemaGen struct {
	defs   map[string]any
	docs   map[string]string
	looked map[string]bool
}

// doc is the doc comment of a type or field as one paragraph.
func (g *schemaGen) doc(key string) string {
	g.looked[key] = true
	return strings.Join(strings.Fields(g.docs[key]), " ")
}

//go:embed schema_docs.json
var schemaDocs []byte

func embeddedDocs() (map[string]string, error) {
	var docs map[string]string
	if err := json.Unmarshal(schemaDocs, &docs); err != nil {
		return nil, fmt.Errorf("schema_docs.json: %w", err)
	}
	return docs, nil
}

// typeKey and fieldKey name a type's and a field's doc comment in the
// schema's docs: "github.com/resctl/resctl/scenario.Phase",
// "github.com/resctl/resctl/scenario.Phase.Duration".
func typeKey(t reflect.Type) string { return t.PkgPath() + "." + t.Name() }

func fieldKey(t reflect.Type, field string) string { return typeKey(t) + "." + field }

// What the schema says beyond the Go types, as validation says it: keys
// a struct requires (by typeKey), and the values a field may take and its
// default where defaults() does not give one (by fieldKey).
var (
	schemaRequired = map[string][]string{
		typeKey(reflect.TypeFor[Scenario]()): {"name", "target", "load", "phases"},
		typeKey(reflect.TypeFor[Phase]()):    {"name", "duration"},
		typeKey(reflect.TypeFor[SLA]()):      {"expect"},
		typeKey(reflect.TypeFor[Service]()):  {"name", "command", "ready"},
	}
	schemaEnums = map[string][]string{
		fieldKey(reflect.TypeFor[Proxy](), "Protocol"):     protocols,
		fieldKey(reflect.TypeFor[Target](), "Builtin"):     builtins,
		fieldKey(reflect.TypeFor[Load](), "AtMaxInFlight"): {AtCapDrop, AtCapWait},
		fieldKey(reflect.TypeFor[StopSpec](), "Signal"):    StopSignals,
		fieldKey(reflect.TypeFor[Output](), "Formats"):     knownFormats,

		fieldKey(reflect.TypeFor[guard.RateLimitConfig](), "Algorithm"):     {guard.AlgorithmTokenBucket, guard.AlgorithmSlidingWindow},
		fieldKey(reflect.TypeFor[guard.RateLimitConfig](), "Per"):           {guard.PerGlobal, guard.PerRoute, guard.PerHeader},
		fieldKey(reflect.TypeFor[guard.AdaptiveLimitConfig](), "Algorithm"): {guard.AlgorithmGradient, guard.AlgorithmVegas},
		fieldKey(reflect.TypeFor[guard.RetryBackoff](), "Jitter"):           {guard.JitterNone, guard.JitterFull, guard.JitterEqual, guard.JitterDecorrelated},
		fieldKey(reflect.TypeFor[inject.LatencySpec](), "Distribution"):     distributions,
		fieldKey(reflect.TypeFor[inject.TCPLatencySpec](), "Distribution"):  distributions,
		fieldKey(reflect.TypeFor[inject.GRPCDelaySpec](), "Distribution"):   distributions,
		fieldKey(reflect.TypeFor[agent.GoroutinesSpec](), "Mode"):           {agent.ModePark, agent.ModeSpin},
		fieldKey(reflect.TypeFor[agent.MemorySpec](), "Mode"):               {agent.ModeBallast, agent.ModeChurn},
	}
	distributions  = []string{inject.DistUniform, inject.DistNormal, inject.DistPareto}
	schemaDefaults = map[string]any{
		fieldKey(reflect.TypeFor[Proxy](), "Protocol"):     DefaultProtocol,
		fieldKey(reflect.TypeFor[Request](), "Method"):     DefaultMethod,
		fieldKey(reflect.TypeFor[Load](), "MaxInFlight"):   DefaultMaxInFlight,
		fieldKey(reflect.TypeFor[Load](), "AtMaxInFlight"): AtCapDrop,
		fieldKey(reflect.TypeFor[StopSpec](), "Signal"):    "SIGTERM",
	}
	// positive are durations that must be above zero.
	positive = map[string]bool{
		fieldKey(reflect.TypeFor[Phase](), "Duration"): true,
		fieldKey(reflect.TypeFor[Load](), "Timeout"):   true,
	}
)

var (
	durationPattern            = `^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$`
	nonNegativeDurationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// zeroDurationPattern is a duration without a digit above zero.
	zeroDurationPattern = `^[0.nuµmsh]*$`
	percentType         = map[string]any{
		"description": "a share from 0 to 100: 50, 50% or 12.5%",
		"anyOf": []any{
			map[string]any{"type": "number", "minimum": 0, "maximum": 100},
			map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+)?%?$`},
		},
	}
	rateType = map[string]any{
		"description": "requests per unit of time: 200/s, 3000/m, or a number per second",
		"anyOf": []any{
			map[string]any{"type": "number", "exclusiveMinimum": 0},
			map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+)?(/([0-9.]*(ns|us|ms|s|m|min|h)))?$`},
		},
	}
	bytesType = map[string]any{
		"description": "a size: 512, 64KiB, 2MB",
		"anyOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+)?(B|KiB|MiB|GiB|KB|MB|GB)?$`},
		},
	}
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (g *schemaGen) typeOf(t reflect.Type) map[string]any {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return map[string]any{"type": "string", "pattern": durationPattern, "description": "a duration: 300ms, 10s, 1m30s"}
	case reflect.TypeFor[quantity.Percent]():
		return percentType
	case reflect.TypeFor[quantity.Rate]():
		return rateType
	case reflect.TypeFor[quantity.Bytes]():
		return bytesType
	case reflect.TypeFor[Fault]():
		return g.faults()
	case reflect.TypeFor[GRPCData]():
		return map[string]any{"description": "a request message: a map of fields, a list (a client stream), or a JSON string", "type": []string{"object", "array", "string"}}
	case reflect.TypeFor[check.Code]():
		return map[string]any{"description": "an HTTP status code (200) or a gRPC status code's name (NOT_FOUND)", "type": []string{"integer", "string"}}
	case reflect.TypeFor[check.Size]():
		return map[string]any{"description": "a body size: exact (120, 4KiB) or {min, max}", "anyOf": []any{bytesType, g.object(t, reflect.Value{})}}
	case reflect.TypeFor[check.Value]():
		return map[string]any{"description": "the value the field must have, any JSON value"}
	case reflect.TypeFor[PhaseRate]():
		return map[string]any{"description": "a phase's rate: constant (200/s) or shaped", "anyOf": []any{rateType, g.object(reflect.TypeFor[rateShape](), reflect.Value{})}}
	case reflect.TypeFor[guard.Spec]():
		return g.oneKind("policy", "a guard policy: one kind with its configuration", guard.Kinds(), func(k string) any { c, _ := guard.NewConfig(k); return c })
	case reflect.TypeFor[guard.BudgetConfig]():
		// `budget: 20%` is the ratio alone.
		return map[string]any{"anyOf": []any{g.object(t, reflect.Value{}), percentType}}
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return map[string]any{"type": []string{"string", "number"}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeOf(t.Elem())
	case reflect.Struct:
		return g.object(t, reflect.Value{})
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.typeOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.typeOf(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	}
	return map[string]any{}
}

// object is the schema of a struct: its keys, each described by its
// field's doc comment (or its type's), with the default that def, a value
// of t with its defaults filled in (or invalid for none), gives it.
func (g *schemaGen) object(t reflect.Type, def reflect.Value) map[string]any {
	props := map[string]any{}
	var walk func(t reflect.Type, def reflect.Value)
	walk = func(t reflect.Type, def reflect.Value) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			var fdef reflect.Value
			if def.IsValid() {
				fdef = def.Field(i)
			}
			if opts == "inline" {
				walk(f.Type, fdef)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			props[name] = g.property(t, f, fdef)
		}
	}
	walk(t, def)
	obj := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if req := schemaRequired[typeKey(t)]; req != nil {
		obj["required"] = req
	}
	switch t {
	case reflect.TypeFor[Target]():
		// Exactly one of builtin and url.
		obj["oneOf"] = []any{map[string]any{"required": []string{"builtin"}}, map[string]any{"required": []string{"url"}}}
	case reflect.TypeFor[Load]():
		obj["anyOf"] = []any{map[string]any{"required": []string{"requests"}}, map[string]any{"required": []string{"grpc"}}}
	}
	return obj
}

// property is the schema of one field of t: its type's, with the field's
// description, values and default.
func (g *schemaGen) property(t reflect.Type, f reflect.StructField, def reflect.Value) map[string]any {
	key := fieldKey(t, f.Name)
	var prop map[string]any
	if def.IsValid() && f.Type.Kind() == reflect.Struct && !f.Type.Implements(textUnmarshaler) && !reflect.PointerTo(f.Type).Implements(textUnmarshaler) {
		prop = g.objectOrType(f.Type, def)
	} else {
		prop = g.typeOf(f.Type)
	}
	prop = maps.Clone(prop) // typeOf may hand out shared schemas
	if positive[key] {
		prop["pattern"] = nonNegativeDurationPattern
		prop["not"] = map[string]any{"pattern": zeroDurationPattern}
	}
	desc := g.doc(key)
	if desc == "" {
		desc = g.doc(typeKey(indirect(f.Type)))
	}
	if typeDesc, ok := prop["description"].(string); ok && desc != "" {
		desc += " (" + typeDesc + ")"
	}
	if desc != "" {
		prop["description"] = desc
	}
	if enum := schemaEnums[key]; enum != nil {
		if prop["type"] == "array" {
			prop["items"] = map[string]any{"type": "string", "enum": enum}
		} else {
			prop["enum"] = enum
		}
	}
	if d, ok := schemaDefaults[key]; ok {
		prop["default"] = d
	} else if d, ok := defaultOf(def); ok {
		prop["default"] = d
	}
	return prop
}

// objectOrType is typeOf for a struct field whose defaults are known.
func (g *schemaGen) objectOrType(t reflect.Type, def reflect.Value) map[string]any {
	if _, special := specialTypes[t]; special {
		return g.typeOf(t)
	}
	return g.object(t, def)
}

// specialTypes are the struct types typeOf writes a schema of its own for.
var specialTypes = map[reflect.Type]bool{
	reflect.TypeFor[check.Size]():         true,
	reflect.TypeFor[PhaseRate]():          true,
	reflect.TypeFor[guard.BudgetConfig](): true,
	reflect.TypeFor[guard.Spec]():         true,
	reflect.TypeFor[Fault]():              true,
	reflect.TypeFor[GRPCData]():           true,
}

func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	return t
}

// defaultOf is a field's default as the file would write it, where it has
// one that is not the zero value.
func defaultOf(v reflect.Value) (any, bool) {
	if !v.IsValid() || v.IsZero() {
		return nil, false
	}
	switch x := v.Interface().(type) {
	case time.Duration:
		return fmtDuration(x), true
	case encoding.TextMarshaler:
		b, err := x.MarshalText()
		return string(b), err == nil
	}
	switch v.Kind() {
	case reflect.Bool, reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return v.Interface(), true
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			return v.Interface(), true
		}
	}
	return nil, false
}

// oneKind is a one-key object from a kind to that kind's parameters, or a
// bare kind name for all defaults.
func (g *schemaGen) oneKind(prefix, desc string, kinds []string, newConfig func(string) any) map[string]any {
	var alts []any
	for _, k := range kinds {
		def := prefix + "_" + k
		c := reflect.ValueOf(newConfig(k))
		g.defs[def] = g.object(c.Type().Elem(), c.Elem())
		forms := []any{map[string]any{"$ref": "#/$defs/" + def}, map[string]any{"type": "null"}}
		if prefix == "policy" && k == "timeout" {
			forms = append(forms, g.typeOf(reflect.TypeFor[time.Duration]())) // `timeout: 500ms`
		}
		alts = append(alts, map[string]any{
			"type":                 "object",
			"properties":           map[string]any{k: map[string]any{"anyOf": forms}},
			"required":             []string{k},
			"additionalProperties": false,
		})
	}
	alts = append(alts, map[string]any{"type": "string", "enum": slices.Clone(kinds)})
	return map[string]any{"description": desc, "oneOf": alts}
}

// optionalKey is a proxy or network fault's optional: key.
var optionalKey = map[string]any{"type": "boolean", "description": "run without the fault where this machine cannot inject it (a network fault without root), reporting it as not started; otherwise the run refuses to start"}

// faults is a fault of any layer: a kind known to several layers (latency
// on http and tcp proxies) takes the parameters of either, and every
// proxy fault may name its proxy.
func (g *schemaGen) faults() map[string]any {
	var kinds []string
	forms := map[string][]any{}
	for _, l := range layers {
		for _, k := range inject.KindsFor(l) {
			spec, _ := inject.NewSpecFor(l, k)
			def := "fault_" + string(l) + "_" + k
			obj := g.object(reflect.TypeOf(spec).Elem(), reflect.ValueOf(spec).Elem())
			obj["properties"].(map[string]any)["proxy"] = map[string]any{"type": "string", "description": "the proxy the fault acts on"}
			obj["properties"].(map[string]any)["optional"] = optionalKey
			g.defs[def] = obj
			if forms[k] == nil {
				kinds = append(kinds, k)
			}
			forms[k] = append(forms[k], map[string]any{"$ref": "#/$defs/" + def})
		}
	}
	for _, k := range agent.Kinds() {
		spec, _ := agent.NewSpec(k)
		def := "fault_runtime_" + k
		g.defs[def] = g.object(reflect.TypeOf(spec).Elem(), reflect.ValueOf(spec).Elem())
		kinds = append(kinds, k)
		forms[k] = append(forms[k], map[string]any{"$ref": "#/$defs/" + def})
	}
	for _, k := range process.Kinds() {
		spec, _ := process.NewSpec(k)
		def := "fault_process_" + k
		g.defs[def] = g.object(reflect.TypeOf(spec).Elem(), reflect.ValueOf(spec).Elem())
		kinds = append(kinds, k)
		forms[k] = append(forms[k], map[string]any{"$ref": "#/$defs/" + def})
	}
	net := g.object(reflect.TypeFor[netem.Spec](), reflect.Value{})
	net["properties"].(map[string]any)["proxy"] = map[string]any{"type": "string", "description": "the proxy whose link to its upstream the fault acts on"}
	net["properties"].(map[string]any)["optional"] = optionalKey
	g.defs["fault_network"] = net
	kinds = append(kinds, networkKind)
	forms[networkKind] = []any{map[string]any{"$ref": "#/$defs/fault_network"}}
	var alts []any
	for _, k := range kinds {
		params := append(forms[k], map[string]any{"type": "null"})
		alts = append(alts, map[string]any{
			"type":                 "object",
			"properties":           map[string]any{k: map[string]any{"anyOf": params}},
			"required":             []string{k},
			"additionalProperties": false,
		})
	}
	alts = append(alts, map[string]any{"type": "string", "enum": kinds})
	return map[string]any{"description": "a fault: one kind with its parameters", "oneOf": alts}
}
