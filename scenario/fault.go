package scenario

import (
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/inject/netem"
	"github.com/resctl/resctl/inject/process"
	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/internal/suggest"
)

// DecodeNode implements strictyaml.NodeDecoder. It reads `kind: {params}`:
// the single key picks the spec the parameters decode into — a proxy
// fault of inject, or a runtime fault of inject/agent that the target's
// agent runs.
func (f *Fault) DecodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	k, v, ok := d.OneKey(n, path, "fault", "- latency: {delay: 300ms}")
	if !ok {
		return
	}
	if rt, ok := agent.NewSpec(k.Value); ok {
		kp := strictyaml.Join(path, k.Value)
		d.At[kp] = v
		if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			d.DecodeStruct(v, reflect.ValueOf(rt).Elem(), kp)
			_ = v.Decode(&f.Params) // plain data for the agent's JSON API
		}
		f.Runtime = rt
		return
	}
	if ps, ok := process.NewSpec(k.Value); ok {
		kp := strictyaml.Join(path, k.Value)
		d.At[kp] = v
		if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			d.DecodeStruct(v, reflect.ValueOf(ps).Elem(), kp)
			_ = v.Decode(&f.Params) // as the scenario gave them, for reports
		}
		f.Process = ps
		return
	}
	// A proxy fault's kinds depend on its proxy's protocol (HTTP or TCP),
	// which the file may give after its phases: resolve it in validation.
	f.kind, f.kindNode, f.params = k.Value, k, v
	f.path = strictyaml.Join(path, k.Value)
	d.At[f.path] = v
	f.takeKeys(d)
}

// takeKeys removes the keys that are about the fault rather than
// parameters of its kind from a proxy fault's parameters: proxy: (the
// proxy it acts on) and optional:.
func (f *Fault) takeKeys(d *strictyaml.Decoder) {
	v := f.params
	if v.Kind != yaml.MappingNode {
		return
	}
	kept := make([]*yaml.Node, 0, len(v.Content))
	for i := 0; i+1 < len(v.Content); i += 2 {
		key, val := v.Content[i], v.Content[i+1]
		path := strictyaml.Join(f.path, key.Value)
		switch key.Value {
		case "proxy":
			d.At[path] = val
			if d.Expect(val, yaml.ScalarNode, path) {
				f.Proxy, f.proxyNode = val.Value, val
			}
		case "optional":
			d.At[path] = val
			d.Decode(val, reflect.ValueOf(&f.Optional).Elem(), path)
		default:
			kept = append(kept, key, val)
		}
	}
	if len(kept) != len(v.Content) {
		c := *v
		c.Content = kept
		f.params = &c
	}
}

// resolve decodes a proxy fault's parameters into the spec of its kind for
// the proxy's layer.
func (f *Fault) resolve(d *strictyaml.Decoder, path string, layer inject.Layer) {
	if f.kindNode == nil {
		return
	}
	if f.kind == networkKind {
		// Network faults act on packets, whatever the proxy speaks.
		n := &netem.Spec{}
		if v := f.params; !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			before := len(d.Problems)
			d.DecodeStruct(v, reflect.ValueOf(n).Elem(), f.path)
			// A value that did not decode is reported; checking what
			// is left would add "set at least one…" to it.
			f.undecoded = len(d.Problems) > before
			_ = v.Decode(&f.Params) // as the scenario gave them, for reports
		}
		f.Network = n
		f.kind, f.kindNode, f.params, f.path = "", nil, nil, ""
		return
	}
	spec, ok := inject.NewSpecFor(layer, f.kind)
	if !ok {
		known := append(inject.KindsFor(layer), agent.Kinds()...)
		known = append(known, process.Kinds()...)
		known = append(known, networkKind)
		pos := strictyaml.NodePos(f.kindNode)
		for _, other := range layers {
			if _, ok := inject.NewSpecFor(other, f.kind); ok && other != layer {
				d.Add(pos, path, "fault kind %q is for %s proxies; proxy %q speaks %s (its kinds: %s)", f.kind, other, f.Proxy, layer, strings.Join(inject.KindsFor(layer), ", "))
				return
			}
		}
		if s, close := suggest.Closest(f.kind, known); close {
			d.Add(pos, path, "unknown fault kind %q (did you mean %q?)", f.kind, s)
			return
		}
		d.Add(pos, path, "unknown fault kind %q; known kinds: %s", f.kind, strings.Join(known, ", "))
		return
	}
	if v := f.params; !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		d.DecodeStruct(v, reflect.ValueOf(spec).Elem(), f.path)
	}
	f.Spec = spec
	f.kind, f.kindNode, f.params, f.path = "", nil, nil, ""
}

// networkKind is the kind of the network faults (inject/netem), which act
// on any proxy's link to its upstream.
var networkKind = (*netem.Spec)(nil).Kind()

// layers are the proxy layers faults act on, for messages.
var layers = []inject.Layer{inject.LayerHTTP, inject.LayerGRPC, inject.LayerTCP}
