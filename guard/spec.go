package guard

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/internal/suggest"
)

// Spec is one policy of a chain as a configuration file writes it: a
// single-key map from its kind to its configuration,
// `- breaker: {window: 10s, failure_rate: 50%}`. Scenario files and the
// standalone proxy's config file decode chains into Specs.
type Spec struct {
	Config Config
	// Name identifies the policy in metrics, events and SLAs: its route's
	// name, or "proxy" for a proxy-wide chain, with "#2", "#3"… when a kind
	// repeats in one chain (see NameChain).
	Name string
}

// Kind is the policy's kind name.
func (s Spec) Kind() string { return s.Config.Kind() }

// Identity stays the same while the policy's name, kind and configuration
// do: a reloaded chain keeps the running policy (and its state) for every
// Spec whose identity is unchanged.
func (s Spec) Identity() string {
	return fmt.Sprintf("%s\x00%s\x00%+v", s.Name, s.Kind(), reflect.Indirect(reflect.ValueOf(s.Config)).Interface())
}

// RouteSpec is a part of an API with a chain of its own.
type RouteSpec struct {
	// Name identifies the route's policies; default: its path.
	Name  string     `yaml:"name"`
	Match RouteMatch `yaml:"match"`
	// Guard is the route's chain, applied in order, inside the proxy-wide
	// chain.
	Guard []Spec `yaml:"guard"`
	// Upstreams, when set, are where the route's requests go instead of
	// the proxy's upstream: several instances of one service, balanced by
	// the proxy (power of two choices, passive ejection).
	Upstreams []string `yaml:"upstreams"`
}

// RouteMatch selects a route's requests: a path prefix and, optionally, a
// method. The longest matching prefix wins.
type RouteMatch struct {
	// Path is the prefix of the paths the route takes; the longest matching
	// prefix wins.
	Path string `yaml:"path"`
	// Method, when set, is the one method the route takes.
	Method string `yaml:"method"`
}

// DecodeNode implements strictyaml.NodeDecoder.
func (s *Spec) DecodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	k, v, ok := d.OneKey(n, path, "policy", "- breaker: {failure_rate: 50%}")
	if !ok {
		return
	}
	cfg, ok := NewConfig(k.Value)
	if !ok {
		if c, close := suggest.Closest(k.Value, Kinds()); close {
			d.Add(strictyaml.NodePos(k), path, "unknown policy kind %q (did you mean %q?)", k.Value, c)
		} else {
			d.Add(strictyaml.NodePos(k), path, "unknown policy kind %q; known kinds: %s", k.Value, strings.Join(Kinds(), ", "))
		}
		return
	}
	kp := strictyaml.Join(path, k.Value)
	d.At[kp] = v
	switch nd, ok := cfg.(strictyaml.NodeDecoder); {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
	case ok:
		nd.DecodeNode(d, v, kp) // a kind with a shorthand: `- timeout: 500ms`
	default:
		d.DecodeStruct(v, reflect.ValueOf(cfg).Elem(), kp)
	}
	s.Config = cfg
}

// NameChain names a chain's policies after their owner (a route's name, or
// "proxy") and reports every configuration problem with the path of the
// policy's fields, e.g. "routes[0].guard[1].breaker.failure_rate".
func NameChain(path, owner string, chain []Spec, problem func(path, msg string)) {
	perKind := map[string]int{}
	for _, s := range chain {
		if s.Config != nil {
			perKind[s.Kind()]++
		}
	}
	seen := map[string]int{}
	for j := range chain {
		s := &chain[j]
		if s.Config == nil {
			continue // its decoder already said why
		}
		seen[s.Kind()]++
		s.Name = owner
		if perKind[s.Kind()] > 1 {
			s.Name += fmt.Sprintf("#%d", seen[s.Kind()])
		}
		pp := fmt.Sprintf("%s[%d].%s", path, j, s.Kind())
		s.Config.Check(func(field, msg string) { problem(pp+"."+field, msg) })
	}
}

// Builder builds chains from Specs, keeping the policies it built: a later
// Build reuses the running policy for every Spec whose Identity is
// unchanged, so a reload keeps a breaker open, a limiter's learned limit,
// a rate limiter's buckets.
type Builder struct {
	opts    Options
	running map[string]Policy
}

// KindObserver is an Observer that can be told which kind of policy it
// hears. A Builder builds policies of every kind under one Options, and
// the policies of one owner share its name, so a Builder hands each
// policy the Observer that ForKind returns for its kind: a breaker's
// transitions and a retry's are then told apart.
type KindObserver interface {
	Observer
	ForKind(kind string) Observer
}

// NewBuilder returns a Builder whose policies take opts; an opts.Observer
// that is a KindObserver is asked for one Observer per policy's kind.
func NewBuilder(opts Options) *Builder {
	return &Builder{opts: opts, running: map[string]Policy{}}
}

// Build returns a chain of the specs' policies, reusing running ones, and
// the policies it dropped, for the caller to close once no request uses
// them.
func (b *Builder) Build(specs []Spec) (*Chain, error) {
	ps := make([]Policy, 0, len(specs))
	for _, s := range specs {
		id := s.Identity()
		if p, ok := b.running[id]; ok {
			ps = append(ps, p)
			continue
		}
		opts := b.opts
		if ko, ok := opts.Observer.(KindObserver); ok {
			opts.Observer = ko.ForKind(s.Kind())
		}
		p, err := s.Config.Build(s.Name, opts)
		if err != nil {
			return nil, err
		}
		b.running[id] = p
		ps = append(ps, p)
	}
	return NewChain(ps...), nil
}

// Retain forgets the running policies not used by the given chains.
func (b *Builder) Retain(chains ...*Chain) {
	keep := map[Policy]bool{}
	for _, c := range chains {
		if c == nil {
			continue
		}
		for _, p := range c.Policies() {
			keep[p] = true
		}
	}
	for id, p := range b.running {
		if !keep[p] {
			delete(b.running, id)
		}
	}
}
