package verify_test

import (
	"reflect"
	"testing"

	"github.com/resctl/resctl/verify"
)

func TestExpr_Explain(t *testing.T) {
	env := threePhases().failing(0.5, 13, 14, 15, 17)
	env.buckets[2].p99 = ms(120)
	env.buckets[3].p99 = ms(130)
	env.scraped = append(env.scraped, gauge("target", "go_goroutines", nil, append(repeat(10, 12), repeat(90, 18)...)...))
	env.states[verify.StateRef{Kind: "breaker", Name: "orders"}] = stateHistory{initial: "closed", changes: []stateChange{{sec(12.5), "open"}}}

	tests := []struct {
		name, src, during string
		want              []verify.Comparison
	}{
		{
			name: "latency limit breached in two seconds", src: "success_rate >= 99% and p99 < 100ms", during: "baseline",
			want: []verify.Comparison{
				{Subject: "success_rate", Op: ">=", Kind: verify.KindRatio, Value: 1, ValueOK: true, Limit: 0.99, LimitOK: true, Held: true, Load: "success_rate"},
				{Subject: "p99", Op: "<", Kind: verify.KindDuration, Value: 0.13, ValueOK: true, Limit: 0.1, LimitOK: true, Load: "p99",
					Breaches: []verify.Window{{From: sec(2), To: sec(4)}}},
			},
		},
		{
			name: "limit written first is turned round", src: "99% < success_rate", during: "fault",
			want: []verify.Comparison{
				{Subject: "success_rate", Op: ">", Kind: verify.KindRatio, Value: 0.8, ValueOK: true, Limit: 0.99, LimitOK: true, Load: "success_rate",
					Breaches: []verify.Window{{From: sec(13), To: sec(16)}, {From: sec(17), To: sec(18)}}},
			},
		},
		{
			// A selector's window takes the sample at its end: the
			// second before the jump sees it.
			name: "gauge against a phase's average", src: "last(target:go_goroutines) <= 2 * avg(target:go_goroutines during baseline)", during: "fault",
			want: []verify.Comparison{
				{Subject: "last(target:go_goroutines)", Op: "<=", Kind: verify.KindPlain, Value: 90, ValueOK: true, Limit: 20, LimitOK: true,
					Selector: &verify.Selector{Source: "target", Metric: "go_goroutines"}, Func: "last",
					Breaches: []verify.Window{{From: sec(11), To: sec(20)}}},
			},
		},
		{
			name: "timing deadline and the condition inside", src: "time_to(error_rate > 5%) < 2s",
			want: []verify.Comparison{
				{Subject: "error_rate", Op: ">", Kind: verify.KindRatio, Limit: 0.05, LimitOK: true, Load: "error_rate", Within: "time_to"},
				{Subject: "time_to", Op: "<", Kind: verify.KindDuration, Value: 3, ValueOK: true, Limit: 2, LimitOK: true, IsTimed: true, Since: sec(10)},
			},
		},
		{
			name: "state", src: `breaker("orders") == closed`, during: "fault",
			want: []verify.Comparison{
				{Subject: `breaker("orders")`, Op: "==", LimitState: "closed", ValueState: "open", State: &verify.StateRef{Kind: "breaker", Name: "orders"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := verify.Parse(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Explain(env, scopeOf(env, tt.during))
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				got[i].Value = round(got[i].Value)
				got[i].Limit = round(got[i].Limit)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Explain(%q)\n got %+v\nwant %+v", tt.src, got, tt.want)
			}
		})
	}
}

func round(v float64) float64 {
	const q = 1e9
	return float64(int64(v*q+0.5)) / q
}
