package runner

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/report"
)

// usersRoute is a scenario whose one route has a retry, a breaker and a
// timeout: three policies sharing the route's name.
const usersRoute = `
name: kinds
target: {builtin: demo}
proxy:
  routes:
    - name: users
      match: {path: /api/users}
      guard:
        - retry: {attempts: 2}
        - breaker: {window: 4, min_calls: 4, failure_rate: 50%, open_for: 1m}
        - timeout: 200ms
load: {rate: 5/s, requests: [{path: /api/users/1}]}
phases: [{name: a, duration: 1s}]
`

// TestGuards_TransitionKeepsPolicyKind: the policies of a route share the
// route's name, so a breaker's transitions must be recorded under the
// breaker's kind, never under the timeout's or the retry's beside it —
// breaker("users") reads them.
func TestGuards_TransitionKeepsPolicyKind(t *testing.T) {
	s := mustParse(t, usersRoute)
	for range 20 { // map order made the old lookup wrong at random
		g, err := buildGuards(s, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		chain := g.chains["proxy"].routes[0].Chain
		for range 4 {
			_ = chain.Do(context.Background(), &guard.Request{Route: "/api/users/1", Method: "GET"}, func(context.Context) guard.Outcome {
				return guard.Outcome{Status: 503}
			})
		}
		_, states, _ := g.snapshot()
		got := states[stateKey{"breaker", "users"}]
		if len(got) == 0 || got[len(got)-1].state != "open" {
			t.Fatalf("breaker(users) changes %v, want it open; all states %v", got, states)
		}
		for _, k := range []string{"timeout", "retry"} {
			if ch := states[stateKey{k, "users"}]; len(ch) != 0 {
				t.Fatalf("%s(users) got the breaker's changes %v", k, ch)
			}
		}
		g.close()
	}
}

// TestGuards_RecordTo: once the run's admin API is given, every guard
// transition is also one of its events, with the proxy's name.
func TestGuards_RecordTo(t *testing.T) {
	s := mustParse(t, `
name: events
target: {builtin: demo}
proxy:
  guard: [{breaker: {window: 4, min_calls: 4, failure_rate: 50%, open_for: 1m}}]
load: {rate: 5/s, requests: [{path: /api/users/1}]}
phases: [{name: a, duration: 1s}]
`)
	g, err := buildGuards(s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	var got []harness.Event
	g.recordTo(func(e harness.Event) { got = append(got, e) })
	for range 4 {
		_ = g.chains["proxy"].proxyWide.Do(context.Background(), &guard.Request{Route: "/", Method: "GET"}, func(context.Context) guard.Outcome {
			return guard.Outcome{Status: 503}
		})
	}
	if len(got) != 1 {
		t.Fatalf("events %+v, want the breaker's one transition", got)
	}
	if e := got[0]; e.Proxy != "proxy" || e.Source != harness.SourceGuard || e.Kind != harness.KindTransition || e.From != "closed" || e.To != "open" || e.At.IsZero() {
		t.Errorf("event %+v, want proxy's breaker closed → open", e)
	}
}

// TestGuards_Report: the report lists every policy with the state it
// started in, in kind and name order, so a breaker that never changed
// still has a state to draw.
func TestGuards_Report(t *testing.T) {
	s := mustParse(t, usersRoute)
	g, err := buildGuards(s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	want := []report.GuardState{{Kind: "breaker", Name: "users", Initial: "closed"},
		{Kind: "retry", Name: "users", Initial: "passing"}, {Kind: "timeout", Name: "users", Initial: "passing"}}
	if got := g.report(); !slices.Equal(got, want) {
		t.Errorf("report() = %v, want %v", got, want)
	}
}
