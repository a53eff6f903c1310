package scenario

import (
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/internal/suggest"
)

// decodeNode reads `kind: {params}`: the single key picks the inject.Spec
// that the parameters decode into.
// DecodeNode implements strictyaml.NodeDecoder.
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
	spec, ok := inject.NewSpec(k.Value)
	if !ok {
		msg := "unknown fault kind %q; known kinds: " + strings.Join(inject.Kinds(), ", ")
		if s, close := suggest.Closest(k.Value, inject.Kinds()); close {
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
