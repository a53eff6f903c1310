package verify_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/resctl/resctl/verify"
)

func TestExpr_References(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		phases    []string
		selectors []string
		states    []verify.StateRef
	}{
		{name: "none", src: "p99 < 1s"},
		{
			name:   "phases from during and from, sorted and distinct, without run",
			src:    "p99 during recovery < 1s and time_to(p99 > 1s, from: fault) < 1s and p50 during fault < 1s and p90 during run < 1s",
			phases: []string{"fault", "recovery"},
		},
		{
			name:      "selectors sorted and distinct, histograms by bucket",
			src:       `last(target:up{job="a"}) == 1 and rate(proxy:requests_total) > 0 and target:up{job="a"} == 1 and histogram_quantile(0.9, target:latency_seconds) < 1s`,
			selectors: []string{"proxy:requests_total", "target:latency_seconds_bucket", `target:up{job="a"}`},
		},
		{
			name:   "states sorted and distinct",
			src:    `breaker("b") == open and fault("f1") == on and state("pool", "db") == ready and breaker("a") != open and breaker("b") != closed`,
			states: []verify.StateRef{{Kind: "breaker", Name: "a"}, {Kind: "breaker", Name: "b"}, {Kind: "fault", Name: "f1"}, {Kind: "pool", Name: "db"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := verify.Parse(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Phases(); !reflect.DeepEqual(got, tt.phases) {
				t.Errorf("Phases() = %q, want %q", got, tt.phases)
			}
			var sels []string
			for _, s := range e.Selectors() {
				sels = append(sels, s.String())
			}
			if !reflect.DeepEqual(sels, tt.selectors) {
				t.Errorf("Selectors() = %q, want %q", sels, tt.selectors)
			}
			if got := e.States(); !reflect.DeepEqual(got, tt.states) {
				t.Errorf("States() = %v, want %v", got, tt.states)
			}
		})
	}
}

func TestExpr_SelectorsAreCopies(t *testing.T) {
	e, err := verify.Parse(`target:up{job="a"} == 1`)
	if err != nil {
		t.Fatal(err)
	}
	e.Selectors()[0].Matchers[0].Value = "mutated"
	if got := e.Selectors()[0].String(); got != `target:up{job="a"}` {
		t.Errorf("Selectors() returned shared storage: now %q", got)
	}
}

func TestExpr_CheckNames(t *testing.T) {
	known := verify.Known{
		Phases: []string{"baseline", "fault", "recovery"},
		States: map[string][]string{"breaker": {"payments", "orders"}, "fault": {}},
	}
	tests := []struct {
		name string
		src  string
		col  int // 0: no error
		msg  string
	}{
		{name: "all known", src: `p99 during baseline < 1s and time_to(breaker("payments") == open, from: fault) < 1s`},
		{name: "run is always known", src: "p99 during run < 1s"},
		{name: "unchecked kinds pass", src: `state("pool", "db") == ready`},
		{name: "misspelt phase", src: "p99 during basline < 1s", col: 12, msg: `no phase named "basline" (did you mean "baseline"?)`},
		{name: "unknown phase", src: "recovery_time(p99 < 1s, from: warmup) < 1s", col: 31, msg: `no phase named "warmup"; known: baseline, fault, recovery`},
		{name: "quoted phase", src: `p99 during "fault 2" < 1s`, col: 12, msg: `no phase named "fault 2"`},
		{name: "misspelt breaker", src: `breaker("payment") == open`, col: 9, msg: `no breaker named "payment" (did you mean "payments"?)`},
		{name: "no faults at all", src: `fault("latency-1") == on`, col: 7, msg: `no fault named "latency-1"; there are none`},
		{name: "leftmost first", src: `breaker("x") == open and p99 during nope < 1s`, col: 9, msg: `no breaker named "x"`},
		{name: "leftmost first across kinds", src: `p99 during nope < 1s and breaker("x") == open`, col: 12, msg: `no phase named "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := verify.Parse(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			err = e.CheckNames(known)
			if tt.col == 0 {
				if err != nil {
					t.Fatalf("CheckNames = %v, want nil", err)
				}
				return
			}
			var se *verify.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("CheckNames = %v, want a *SyntaxError", err)
			}
			if se.Col != tt.col || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("CheckNames = col %d %q, want col %d containing %q", se.Col, se.Msg, tt.col, tt.msg)
			}
		})
	}
}
