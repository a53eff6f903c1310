package guard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// TestWindows_EvictExactly checks both windows against a plain list of
// what they should hold, call by call.
func TestWindows_EvictExactly(t *testing.T) {
	type rec struct {
		at int64
		m  uint32
	}
	r := rand.New(rand.NewPCG(1, 2))
	var recs []rec
	var now int64
	for range 2000 {
		now += r.Int64N(int64(300 * time.Millisecond))
		m := markCall
		if r.IntN(3) == 0 {
			m |= markFail
		}
		if r.IntN(4) == 0 {
			m |= markSlow
		}
		recs = append(recs, rec{now, m})
	}
	count := func(rs []rec) (calls, fails, slows int64) {
		for _, x := range rs {
			calls++
			fails += int64(x.m >> 1 & 1)
			slows += int64(x.m >> 2 & 1)
		}
		return
	}

	t.Run("count window holds the last N calls", func(t *testing.T) {
		const n = 7
		w := newCountWindow(n)
		for i, x := range recs {
			c, f, s := w.record(x.m)
			wc, wf, ws := count(recs[max(0, i+1-n) : i+1])
			if c != wc || f != wf || s != ws {
				t.Fatalf("after %d calls: window (%d,%d,%d), want (%d,%d,%d)", i+1, c, f, s, wc, wf, ws)
			}
		}
	})
	t.Run("time window holds the calls of the last N whole seconds", func(t *testing.T) {
		const n = 3
		w := newTimeWindow(time.Second, n, 0)
		for i, x := range recs {
			c, f, s := w.record(x.at, x.m)
			sec := x.at / int64(time.Second)
			j := sort.Search(i+1, func(k int) bool { return recs[k].at/int64(time.Second) > sec-n })
			wc, wf, ws := count(recs[j : i+1])
			if c != wc || f != wf || s != ws {
				t.Fatalf("call %d at %v: window (%d,%d,%d), want (%d,%d,%d)", i+1, time.Duration(x.at), c, f, s, wc, wf, ws)
			}
		}
		// A long silence empties it.
		c, bad := w.totals(now + int64(10*time.Second))
		if c != 0 || bad != 0 {
			t.Errorf("after 10s of silence: %d calls, %d bad; want none", c, bad)
		}
	})
}

func TestUnpack_NegativeFailureHalf(t *testing.T) {
	// A recorder may subtract a failure before another adds one.
	v := badDelta(markSlow) + badDelta(markSlow) - badDelta(markFail)
	if f, s := unpack(v); f != -1 || s != 2 {
		t.Errorf("unpack = (%d, %d), want (-1, 2)", f, s)
	}
}

func TestLatencyHist_Quantile(t *testing.T) {
	var h latencyHist
	for i := 1; i <= 1000; i++ {
		h.record(int64(i) * int64(time.Millisecond))
	}
	s := h.take()
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := q * 1000 * float64(time.Millisecond)
		got := float64(s.quantile(q))
		if got < want || got > want*1.13 {
			t.Errorf("q%v = %v, want within 12.5%% above %v", q, time.Duration(got), time.Duration(want))
		}
	}
	if again := h.take(); again.total != 0 {
		t.Errorf("take left %d counts behind", again.total)
	}
	for _, ns := range []int64{0, 1, 1 << 20, 1 << 45} {
		if i := histIndex(ns); histUpper(i) < min(ns, 1<<histMaxExp) {
			t.Errorf("histUpper(histIndex(%d)) = %d, below the value", ns, histUpper(i))
		}
	}
}

func TestClassifier(t *testing.T) {
	cfg := FailureConfig{Status: []string{"5xx", "429"}, GRPC: []string{"unavailable", "4"}, Errors: true, Timeouts: false}
	c := newClassifier(cfg)
	tests := []struct {
		name string
		o    Outcome
		want verdict
	}{
		{"200", Outcome{Status: 200}, success},
		{"404", Outcome{Status: 404}, success},
		{"429 listed", Outcome{Status: 429}, failure},
		{"503 by class", Outcome{Status: 503}, failure},
		{"499 client gone", Outcome{Status: 499}, ignored},
		{"skipped", Outcome{Status: 500, Skipped: true}, ignored},
		{"502 with transport error", Outcome{Status: 502, Err: errors.New("dial")}, failure},
		{"transport error alone", Outcome{Err: errors.New("dial")}, failure},
		{"cancelled", Outcome{Err: fmt.Errorf("x: %w", context.Canceled)}, ignored},
		{"timeouts not counted", Outcome{Timeout: true, Status: 200}, success},
		{"deadline error not counted", Outcome{Err: context.DeadlineExceeded}, success},
		{"grpc OK", Outcome{}, success},
		{"grpc UNAVAILABLE by name", Outcome{GRPCCode: codes.Unavailable}, failure},
		{"grpc DEADLINE_EXCEEDED by number", Outcome{GRPCCode: codes.DeadlineExceeded}, failure},
		{"grpc NOT_FOUND", Outcome{GRPCCode: codes.NotFound}, success},
		{"grpc CANCELLED", Outcome{GRPCCode: codes.Canceled}, ignored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.classify(&tt.o); got != tt.want {
				t.Errorf("classify(%+v) = %d, want %d", tt.o, got, tt.want)
			}
		})
	}
	withTimeouts := newClassifier(FailureConfig{Timeouts: true})
	if got := withTimeouts.classify(&Outcome{Err: context.DeadlineExceeded}); got != failure {
		t.Errorf("with timeouts: deadline = %d, want failure", got)
	}
}
