package runner

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
)

// guards are the scenario's resilience chains, built, and the record of
// every state transition their policies make.
type guards struct {
	chains map[string]proxyChains // by proxy name
	all    []*guard.Chain

	start   time.Time
	mu      sync.Mutex
	events  []record.Event
	changes map[stateKey][]stateChange
	initial map[stateKey]string
	record  func(harness.Event) // see recordTo
}

// proxyChains are one proxy's chains: proxy-wide and per route.
type proxyChains struct {
	proxyWide *guard.Chain
	routes    []harness.Route
}

// buildGuards builds every policy of every proxy of the scenario. Transitions become
// events and states that SLAs read (breaker("orders") == open).
func buildGuards(s *scenario.Scenario, start time.Time) (*guards, error) {
	g := &guards{chains: map[string]proxyChains{}, start: start, changes: map[stateKey][]stateChange{}, initial: map[stateKey]string{}}
	build := func(proxy string, chain []scenario.Policy) (*guard.Chain, error) {
		var ps []guard.Policy
		for _, p := range chain {
			// The policies of a route share its name: each hears its
			// own transitions under its own kind.
			kind := p.Kind()
			opts := guard.Options{Seed: s.Seed, Observer: guard.ObserverFunc(func(name, from, to string, at time.Time) {
				g.transition(kind, proxy, name, from, to, at)
			})}
			pol, err := p.Config.Build(p.Name, opts)
			var ce *guard.ConfigError
			switch {
			case errors.As(err, &ce):
				return nil, err // it names the policy already
			case err != nil:
				return nil, fmt.Errorf("guard %s %q: %w", p.Kind(), p.Name, err)
			}
			if st, ok := pol.(interface{ State() string }); ok {
				g.initial[stateKey{p.Kind(), p.Name}] = st.State()
			}
			g.changes[stateKey{p.Kind(), p.Name}] = nil
			ps = append(ps, pol)
		}
		c := guard.NewChain(ps...)
		g.all = append(g.all, c)
		return c, nil
	}
	for _, np := range s.AllProxies() {
		var pc proxyChains
		var err error
		if len(np.Guard) > 0 {
			if pc.proxyWide, err = build(np.Name, np.Guard); err != nil {
				g.close()
				return nil, err
			}
		}
		for _, rt := range np.Routes {
			c, err := build(np.Name, rt.Guard)
			if err != nil {
				g.close()
				return nil, err
			}
			pc.routes = append(pc.routes, harness.Route{Name: rt.Name, Path: rt.Match.Path, Method: rt.Match.Method, Chain: c, Upstreams: rt.Upstreams})
		}
		g.chains[np.Name] = pc
	}
	return g, nil
}

// setStart sets the instant transitions are timed from: the run's start.
func (g *guards) setStart(t time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.start = t
}

// transition records a state change of a policy (or an upstream) of
// that kind and name. Quick: it runs under the policies' transition lock.
func (g *guards) transition(kind, proxy, policy, from, to string, at time.Time) {
	detail := harness.GuardDetail(kind, policy, from, to)
	g.mu.Lock()
	off := at.Sub(g.start)
	g.events = append(g.events, record.Event{At: off, Source: "guard", Kind: "transition", Detail: detail, Name: policy, From: from, To: to})
	k := stateKey{kind, policy}
	g.changes[k] = append(g.changes[k], stateChange{off, to})
	rec := g.record
	g.mu.Unlock()
	if rec != nil {
		e := harness.Event{At: at, Proxy: proxy, Source: harness.SourceGuard, Kind: harness.KindTransition, ID: policy, PolicyKind: kind,
			From: from, To: to, Detail: detail}
		if kind == scenario.UpstreamStateKind {
			e.Source, e.PolicyKind = harness.SourceProxy, ""
		}
		rec(e)
	}
}

// recordTo makes every transition from now on also an event of the run's
// admin API (Admin.Record), where `resctl chaos --attach` reads it.
func (g *guards) recordTo(rec func(harness.Event)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.record = rec
}

// snapshot returns the transitions so far, as events and as states.
func (g *guards) snapshot() ([]record.Event, map[stateKey][]stateChange, map[stateKey]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(map[stateKey][]stateChange, len(g.changes))
	for k, v := range g.changes {
		ch[k] = slices.Clone(v)
	}
	return slices.Clone(g.events), ch, maps.Clone(g.initial)
}

// report is every policy and the state it started in, in kind and name
// order.
func (g *guards) report() []report.GuardState {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []report.GuardState
	for _, k := range slices.SortedFunc(maps.Keys(g.initial), compareStateKeys) {
		out = append(out, report.GuardState{Kind: k.kind, Name: k.name, Initial: g.initial[k]})
	}
	return out
}

func compareStateKeys(a, b stateKey) int {
	return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.name, b.name))
}

// current is every stateful policy's state now, "breaker orders: open",
// in kind and name order, for the live status.
func (g *guards) current() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(g.initial), compareStateKeys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		state := g.initial[k]
		if ch := g.changes[k]; len(ch) > 0 {
			state = ch[len(ch)-1].state
		}
		out = append(out, k.kind+" "+k.name+": "+state)
	}
	return out
}

func (g *guards) close() {
	for _, c := range g.all {
		_ = c.Close()
	}
}
