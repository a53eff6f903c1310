package scenario

import (
	"encoding"
	"encoding/json"
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
// accepts: editors use it to complete and check scenarios. It describes
// shapes and spellings; ranges that depend on other keys (jitter at most
// delay, a phase named by `during`) are checked by resctl validate only.
func JSONSchema() ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	root := g.object(reflect.TypeFor[Scenario]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "resctl scenario"
	root["required"] = []string{"name", "target", "load", "phases"}
	root["$defs"] = g.defs
	return json.MarshalIndent(root, "", "  ")
}

type schemaGen struct {
	defs map[string]any
}

var (
	durationPattern = `^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$`
	percentType     = map[string]any{
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
		return map[string]any{"description": "a body size: exact (120, 4KiB) or {min, max}", "anyOf": []any{bytesType, g.object(t)}}
	case reflect.TypeFor[check.Value]():
		return map[string]any{"description": "the value the field must have, any JSON value"}
	case reflect.TypeFor[PhaseRate]():
		return map[string]any{"description": "a phase's rate: constant (200/s) or shaped", "anyOf": []any{rateType, g.object(reflect.TypeFor[rateShape]())}}
	case reflect.TypeFor[guard.Spec]():
		return g.oneKind("policy", "a guard policy: one kind with its configuration", guard.Kinds(), func(k string) any { c, _ := guard.NewConfig(k); return c })
	case reflect.TypeFor[guard.BudgetConfig]():
		// `budget: 20%` is the ratio alone.
		return map[string]any{"anyOf": []any{g.object(t), percentType}}
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return map[string]any{"type": []string{"string", "number"}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeOf(t.Elem())
	case reflect.Struct:
		return g.object(t)
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

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if opts == "inline" {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			props[name] = g.typeOf(f.Type)
		}
	}
	walk(t)
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

// oneKind is a one-key object from a kind to that kind's parameters, or a
// bare kind name for all defaults.
func (g *schemaGen) oneKind(prefix, desc string, kinds []string, newConfig func(string) any) map[string]any {
	var alts []any
	for _, k := range kinds {
		def := prefix + "_" + k
		g.defs[def] = g.object(reflect.TypeOf(newConfig(k)).Elem())
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
			obj := g.object(reflect.TypeOf(spec).Elem())
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
		g.defs[def] = g.object(reflect.TypeOf(spec).Elem())
		kinds = append(kinds, k)
		forms[k] = append(forms[k], map[string]any{"$ref": "#/$defs/" + def})
	}
	for _, k := range process.Kinds() {
		spec, _ := process.NewSpec(k)
		def := "fault_process_" + k
		g.defs[def] = g.object(reflect.TypeOf(spec).Elem())
		kinds = append(kinds, k)
		forms[k] = append(forms[k], map[string]any{"$ref": "#/$defs/" + def})
	}
	net := g.object(reflect.TypeFor[netem.Spec]())
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
