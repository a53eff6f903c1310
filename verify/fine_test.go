package verify_test

import (
	"math"
	"testing"
	"time"

	"github.com/resctl/resctl/verify"
)

// fineEnv is a tableEnv that also keeps requests and errors by the tenth
// of a second, as resctl's recording does.
type fineEnv struct {
	*tableEnv
	tenths []bucket
}

var _ verify.FineEnv = (*fineEnv)(nil)

func (e *fineEnv) FineStep() time.Duration { return 100 * time.Millisecond }

func (e *fineEnv) FineLoad(name string, w verify.Window) (float64, bool) {
	var requests, errors float64
	for i := int(w.From / e.FineStep()); i < int(w.To/e.FineStep()) && i < len(e.tenths); i++ {
		requests += e.tenths[i].requests
		errors += e.tenths[i].errors
	}
	switch name {
	case "requests":
		return requests, true
	case "rps":
		return requests / (w.To - w.From).Seconds(), true
	case "error_rate":
		return errors / requests, requests > 0
	case "success_rate":
		return 1 - errors/requests, requests > 0
	}
	return math.NaN(), false
}

// fineThreePhases is threePhases at rps requests a second, evenly spread,
// every request failing in [failFrom, failTo); its seconds agree with its
// tenths.
func fineThreePhases(rps float64, failFrom, failTo time.Duration) *fineEnv {
	e := &fineEnv{tableEnv: threePhases()}
	for i := range 300 {
		b := bucket{requests: rps / 10, p99: ms(10)}
		if at := time.Duration(i) * 100 * time.Millisecond; at >= failFrom && at < failTo {
			b.errors = b.requests
		}
		e.tenths = append(e.tenths, b)
	}
	for s := range e.buckets {
		e.buckets[s] = bucket{p99: ms(10)}
		for _, b := range e.tenths[s*10 : s*10+10] {
			e.buckets[s].requests += b.requests
			e.buckets[s].errors += b.errors
		}
	}
	return e
}

// TestExpr_CheckTimeToFine: time_to on rates and ratios is timed to the
// tenth of a second where the traffic holds enough requests, and to the
// step otherwise; latencies, recovery_time and an env without fine counts
// stay at the step.
func TestExpr_CheckTimeToFine(t *testing.T) {
	busy := fineThreePhases(1000, ms(10400), ms(20300)) // 100 requests a tenth
	quiet := fineThreePhases(50, ms(10400), ms(20300))  // 5 a tenth: windows of 4 tenths
	slow := fineThreePhases(1000, ms(10400), ms(20300))
	for s := 10; s < 30; s++ {
		slow.buckets[s].p99 = ms(900)
	}
	coarse := fineThreePhases(1000, ms(10400), ms(20300)).tableEnv
	runCheckCases(t, []checkCase{
		{
			name: "errors placed to the tenth", src: "time_to(error_rate > 5%) == 400ms", env: busy, scope: scopeOf(busy.tableEnv, ""),
			passed: true, observed: "time_to=400ms", kind: verify.ResultTimeTo, at: ms(10400),
		},
		{
			name: "success rate too", src: "time_to(success_rate < 50%, from: fault) == 400ms", env: busy, scope: scopeOf(busy.tableEnv, ""),
			passed: true, kind: verify.ResultTimeTo, at: ms(10400),
		},
		{
			// From 10.1 the window [10.1, 10.5) holds 20 requests, five of
			// them failed.
			name: "a quiet load widens the window to 20 requests", src: "time_to(error_rate > 20%) == 100ms", env: quiet, scope: scopeOf(quiet.tableEnv, ""),
			passed: true, kind: verify.ResultTimeTo, at: ms(10100),
		},
		{
			// Near the run's end the windows are cut short: a steady 50
			// requests a second must not look like a drop in rps there.
			name: "no detection from the run's end", src: "time_to(rps < 25, from: fault) < 1h", env: quiet, scope: scopeOf(quiet.tableEnv, ""),
			passed: false, observed: "time_to=never", kind: verify.ResultTimeTo, at: never,
		},
		{
			name: "a latency keeps the condition at the step", src: "time_to(error_rate > 5% and p99 > 500ms) == 0s", env: slow, scope: scopeOf(slow.tableEnv, ""),
			passed: true, kind: verify.ResultTimeTo, at: sec(10),
		},
		{
			name: "an env without fine counts times to the step", src: "time_to(error_rate > 5%) == 0s", env: coarse, scope: scopeOf(coarse, ""),
			passed: true, kind: verify.ResultTimeTo, at: sec(10),
		},
		{
			// Errors end at 20.3: the second from 20 still has them.
			name: "recovery_time stays at the step", src: "recovery_time(error_rate < 1%, hold: 1s) == 1s", env: busy, scope: scopeOf(busy.tableEnv, ""),
			passed: true, kind: verify.ResultRecoveryTime, at: sec(21),
		},
	})
}
