package scenario_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/scenario"
)

func TestParse_phaseRates(t *testing.T) {
	src := `name: shapes
target: {builtin: demo}
load: {rate: 20/s, requests: [{path: /}]}
phases:
  - {name: flat, duration: 5s}
  - {name: more, duration: 5s, rate: 40/s}
  - {name: warm, duration: 10s, rate: {ramp: {from: 10/s, to: 100/s}}}
  - {name: stairs, duration: 9s, rate: {steps: [10/s, 20/s, 30/s]}}
  - {name: burst, duration: 10s, rate: {spike: {peak: 500/s, at: 4s, for: 1s}}}
`
	s, err := scenario.Parse("shapes.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ph := s.Phases
	if ph[0].Rate.IsSet() {
		t.Errorf("flat phase has a rate of its own: %+v", ph[0].Rate)
	}
	if got := ph[1].Rate.Constant.PerSecond(); got != 40 {
		t.Errorf("more: constant %v, want 40", got)
	}
	if r := ph[2].Rate.Ramp; r == nil || r.From.PerSecond() != 10 || r.To.PerSecond() != 100 {
		t.Errorf("warm: ramp %+v, want 10/s → 100/s", r)
	}
	if got := len(ph[3].Rate.Steps); got != 3 {
		t.Errorf("stairs: %d steps, want 3", got)
	}
	if sp := ph[4].Rate.Spike; sp == nil || sp.Base.PerSecond() != 20 || sp.Peak.PerSecond() != 500 || sp.At != 4*time.Second || sp.For != time.Second {
		t.Errorf("burst: spike %+v, want base 20/s (load.rate), peak 500/s at 4s for 1s", sp)
	}
}

func TestParse_phaseRateProblems(t *testing.T) {
	const head = "name: t\ntarget: {builtin: demo}\nload: {requests: [{path: /}]}\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{
			name: "two shapes",
			src:  head + "phases: [{name: a, duration: 5s, rate: {ramp: {to: 5/s}, steps: [1/s]}}]\n",
			want: []string{"4:40: phases[0].rate: give one shape: ramp, steps or spike"},
		},
		{
			name: "spike outside the phase",
			src:  head + "phases: [{name: a, duration: 5s, rate: {spike: {base: 1/s, peak: 9/s, at: 6s}}}]\n",
			want: []string{"4:48: phases[0].rate.spike.for: must be above zero", "4:75: phases[0].rate.spike.at: must be inside the phase (0 to 5s)"},
		},
		{
			name: "no load.rate and a phase without a rate",
			src:  head + "phases: [{name: a, duration: 5s, rate: 5/s}, {name: b, duration: 5s}]\n",
			want: []string{"3:7: load.rate: is required"},
		},
		{
			name: "a shape with no parameters",
			src:  head + "phases: [{name: a, duration: 5s, rate: {ramp: }}]\n",
			want: []string{"4:47: phases[0].rate.ramp: give the shape its parameters"},
		},
		{
			name: "a spike with no base and no load.rate",
			src:  head + "phases: [{name: a, duration: 5s, rate: {spike: {peak: 9/s, at: 1s, for: 1s}}}]\n",
			want: []string{"4:48: phases[0].rate.spike.base: is required when load.rate is not set"},
		},
		{
			name: "unknown shape",
			src:  head + "phases: [{name: a, duration: 5s, rate: {rmp: {to: 5/s}}}]\n",
			want: []string{`4:41: phases[0].rate.rmp: unknown key "rmp" (did you mean "ramp"?)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scenario.Parse("bad.yaml", []byte(tt.src))
			var ve *scenario.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error = %v, want a *scenario.ValidationError", err)
			}
			if !matchProblems(t, ve.Problems, tt.want) {
				t.Errorf("source:\n%s\ngot problems:\n%s\nwant:\n  %s", tt.src, listProblems(ve.Problems), strings.Join(tt.want, "\n  "))
			}
		})
	}
}
