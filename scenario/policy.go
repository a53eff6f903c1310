package scenario

import (
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/internal/suggest"
)

// Policy is one resilience policy of a guard chain, written like a fault:
// a single-key map from its kind to its configuration,
// `- breaker: {window: 10s, failure_rate: 50%}`.
type Policy struct {
	Config guard.Config
	// Name identifies the policy in metrics, events and SLAs
	// (breaker("orders")): its route's name, or "proxy" for the proxy-wide
	// chain, with "#2", "#3"… when a kind repeats in one chain.
	Name string
}

// Kind is the policy's kind name.
func (p Policy) Kind() string { return p.Config.Kind() }

// Route is a part of the API the proxy guards on its own.
type Route struct {
	// Name identifies the route's policies; default: its path.
	Name  string     `yaml:"name"`
	Match RouteMatch `yaml:"match"`
	// Guard is the route's chain, applied in order, inside the proxy-wide
	// chain.
	Guard []Policy `yaml:"guard"`
}

// RouteMatch selects a route's requests: a path prefix and, optionally, a
// method. The longest matching prefix wins.
type RouteMatch struct {
	Path   string `yaml:"path"`
	Method string `yaml:"method"`
}

// DecodeNode implements strictyaml.NodeDecoder.
func (p *Policy) DecodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		d.Add(strictyaml.NodePos(n), path, "empty policy: name a kind with its configuration, e.g. `- breaker: {failure_rate: 50%%}`")
		return
	}
	if n.Kind == yaml.ScalarNode {
		n = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column,
			Content: []*yaml.Node{n, {Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}}}
	}
	if !d.Expect(n, yaml.MappingNode, path) {
		return
	}
	if len(n.Content) != 2 {
		d.Add(strictyaml.NodePos(n), path, "a policy is one kind with its configuration, e.g. `- breaker: {failure_rate: 50%%}`; found %d keys", len(n.Content)/2)
		return
	}
	k, v := n.Content[0], n.Content[1]
	cfg, ok := guard.NewConfig(k.Value)
	if !ok {
		if s, close := suggest.Closest(k.Value, guard.Kinds()); close {
			d.Add(strictyaml.NodePos(k), path, "unknown policy kind %q (did you mean %q?)", k.Value, s)
		} else {
			d.Add(strictyaml.NodePos(k), path, "unknown policy kind %q; known kinds: %s", k.Value, strings.Join(guard.Kinds(), ", "))
		}
		return
	}
	kp := strictyaml.Join(path, k.Value)
	d.At[kp] = v
	if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		d.DecodeStruct(v, reflect.ValueOf(cfg).Elem(), kp)
	}
	p.Config = cfg
}
