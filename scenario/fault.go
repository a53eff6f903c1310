package scenario

import (
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/internal/suggest"
)

// DecodeNode implements strictyaml.NodeDecoder. It reads `kind: {params}`:
// the single key picks the spec the parameters decode into — a proxy
// fault of inject, or a runtime fault of inject/agent that the target's
// agent runs.
func (f *Fault) DecodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		d.Add(strictyaml.NodePos(n), path, "empty fault: name a kind with its parameters, e.g. `- latency: {delay: 300ms}`")
		return
	}
	if n.Kind == yaml.ScalarNode {
		// "- abort" alone: a kind with all defaults.
		n = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column,
			Content: []*yaml.Node{n, {Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}}}
	}
	if !d.Expect(n, yaml.MappingNode, path) {
		return
	}
	if len(n.Content) != 2 {
		d.Add(strictyaml.NodePos(n), path, "a fault is one kind with its parameters, e.g. `- latency: {delay: 300ms}`; found %d keys", len(n.Content)/2)
		return
	}
	k, v := n.Content[0], n.Content[1]
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
	spec, ok := inject.NewSpec(k.Value)
	if !ok {
		known := append(inject.Kinds(), agent.Kinds()...)
		msg := "unknown fault kind %q; known kinds: " + strings.Join(known, ", ")
		if s, close := suggest.Closest(k.Value, known); close {
			d.Add(strictyaml.NodePos(k), path, "unknown fault kind %q (did you mean %q?)", k.Value, s)
			return
		}
		d.Add(strictyaml.NodePos(k), path, msg, k.Value)
		return
	}
	kp := strictyaml.Join(path, k.Value)
	d.At[kp] = v
	if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		d.DecodeStruct(v, reflect.ValueOf(spec).Elem(), kp)
	}
	f.Spec = spec
}
