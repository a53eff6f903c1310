package main

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/resctl/resctl/guard"
)

// The model: an upstream answering a steady stream of calls in virtual
// time. Nothing here sleeps or reads the wall clock: a policy sees the
// simulation's clock, so the table is the same on every machine and every
// run of a seed.

// Model is the traffic and the upstream the policies guard.
type Model struct {
	Rate     float64       // calls a second, arriving at random (Poisson)
	Median   time.Duration // the upstream's median latency when healthy
	Sigma    float64       // spread of its log-normal latency
	ErrRate  float64       // share of calls failing at random (500) when healthy
	Spikes   float64       // share of calls five times slower than drawn
	BlipEach time.Duration // a one-second blip three times slower, this often
	Timeout  time.Duration // the client's timeout: a slower call times out
	SLO      time.Duration // a call slower than this, or failed, hurt its user

	Baseline, Fault, Recovery time.Duration
}

// DefaultModel is the model of the published table.
func DefaultModel() Model {
	return Model{
		Rate: 200, Median: 20 * time.Millisecond, Sigma: 0.4, ErrRate: 0.01, Spikes: 0.01,
		BlipEach: 30 * time.Second, Timeout: time.Second, SLO: 250 * time.Millisecond,
		Baseline: 2 * time.Minute, Fault: time.Minute, Recovery: time.Minute,
	}
}

// Fault is what goes wrong with the upstream during the fault phase, as a
// function of the time since it began: a latency multiplier and a share
// of calls that fail (refused at once when down is set).
type Fault struct {
	Name  string
	About string
	At    func(since time.Duration) (mult, fail float64, down bool)
}

// Faults are the table's rows' faults.
var Faults = []Fault{
	{"latency ×10", "every call ten times slower, at once", func(time.Duration) (float64, float64, bool) { return 10, 0, false }},
	{"errors 50%", "half the calls answer 503, at once", func(time.Duration) (float64, float64, bool) { return 1, 0.5, false }},
	{"brownout", "latency creeping from ×1 to ×10 over the minute", func(s time.Duration) (float64, float64, bool) {
		return 1 + 9*min(s.Seconds()/60, 1), 0, false
	}},
	{"flapping", "down (connections refused) 5 s, up 5 s, in turn", func(s time.Duration) (float64, float64, bool) {
		if int(s.Seconds())%10 < 5 {
			return 1, 1, true
		}
		return 1, 0, false
	}},
}

// Result is one cell of the table: one policy against one fault.
type Result struct {
	// Detect is the time from the fault's start to the policy's first
	// trip (leaving its initial state) or first refusal; <0: never.
	Detect time.Duration
	// HurtBefore counts the calls the upstream was sent during the fault
	// before detection that failed or were slower than the SLO.
	HurtBefore int
	// FalseTrips counts the trips during the baseline (after its first
	// ten seconds, the policies' warm-up); Refused the share of baseline
	// calls refused.
	FalseTrips int
	Refused    float64
	// Recover is the time from the fault's end until the policy is back in
	// its initial state for good; 0 if it was already; <0: not by the
	// run's end; NotTripped if it never left it.
	Recover time.Duration
}

// NotTripped is Result.Recover for a policy that never left its initial
// state (nor refused a call) from the fault's start on.
const NotTripped = time.Duration(math.MinInt64)

// warmup is the part of the baseline whose trips are not counted: every
// policy learns the upstream first.
const warmup = 10 * time.Second

// Simulate runs one policy, built from its YAML chain (one entry), against
// one fault of the model.
func Simulate(m Model, f Fault, yaml string, seed uint64) (Result, error) {
	specs, err := guard.Parse([]byte(yaml), "upstream")
	if err != nil {
		return Result{}, err
	}
	clk := &simClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	start := clk.now
	type trip struct {
		at       time.Duration
		from, to string
	}
	var trips []trip
	obs := guard.ObserverFunc(func(_, from, to string, at time.Time) {
		trips = append(trips, trip{at.Sub(start), from, to})
	})
	chain, err := guard.NewBuilder(guard.Options{Clock: clk, Seed: seed, Observer: obs}).Build(specs)
	if err != nil {
		return Result{}, err
	}
	defer chain.Close()
	ps := chain.Policies()
	if len(ps) != 1 {
		return Result{}, fmt.Errorf("a cell is one policy, not %d", len(ps))
	}
	p := ps[0]
	initial := ""
	if st, ok := p.(interface{ State() string }); ok {
		initial = st.State()
	}

	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	faultAt, faultEnd := m.Baseline, m.Baseline+m.Fault
	end := faultEnd + m.Recovery
	res := Result{Detect: -1}
	refusedBase, sentBase := 0, 0
	ctx := context.Background()
	req := &guard.Request{Route: "/api/orders", Method: "GET"}
	errRefused := errors.New("connection refused")

	next := time.Duration(0)
	for next < end {
		clk.runUntil(start.Add(next))
		t := next
		next += time.Duration(rng.ExpFloat64() / m.Rate * float64(time.Second))

		// What the upstream would do with a call sent now.
		mult, fail, down := 1.0, m.ErrRate, false
		if t >= faultAt && t < faultEnd {
			var ff float64
			mult, ff, down = f.At(t - faultAt)
			fail = max(fail, ff)
		}
		if m.BlipEach > 0 && t%m.BlipEach >= m.BlipEach/2 && t%m.BlipEach < m.BlipEach/2+time.Second {
			mult *= 3
		}
		lat := time.Duration(float64(m.Median) * math.Exp(m.Sigma*rng.NormFloat64()) * mult)
		if rng.Float64() < m.Spikes {
			lat *= 5
		}
		o := guard.Outcome{Status: 200}
		failed := rng.Float64() < fail
		switch {
		case failed && down:
			o = guard.Outcome{Err: errRefused}
			lat = time.Millisecond
		case failed && t >= faultAt && t < faultEnd:
			o.Status = 503 // the fault's: the upstream refusing
			lat = min(lat, 5*time.Millisecond)
		case failed:
			o.Status = 500 // the baseline's noise: a bug, not overload
			lat = min(lat, 5*time.Millisecond)
		case lat > m.Timeout:
			lat, o.Timeout, o.Status = m.Timeout, true, 0
		}
		o.Duration = lat

		inBase := t >= warmup && t < faultAt
		if inBase {
			sentBase++
		}
		permit, err := p.Acquire(ctx, req)
		if err != nil {
			if inBase {
				refusedBase++
			}
			if t >= faultAt && t < faultEnd && res.Detect < 0 {
				res.Detect = t - faultAt
			}
			continue
		}
		if t >= faultAt && t < faultEnd && (res.Detect < 0 || t < faultAt+res.Detect) && (o.Status != 200 || lat > m.SLO) {
			res.HurtBefore++
		}
		clk.schedule(start.Add(t+lat), func() { p.Release(permit, o) })
	}
	clk.runUntil(start.Add(end))

	state, tripped := initial, false
	for _, tr := range trips {
		left := tr.from == initial && tr.to != initial
		switch {
		case left && tr.at >= warmup && tr.at < faultAt:
			res.FalseTrips++
		case left && tr.at >= faultAt && tr.at < faultEnd && (res.Detect < 0 || tr.at-faultAt < res.Detect):
			res.Detect = tr.at - faultAt
		}
		if left && tr.at >= faultAt {
			tripped = true
		}
		if tr.at >= faultEnd && tr.to == initial && state != initial {
			res.Recover = tr.at - faultEnd
		}
		state = tr.to
	}
	switch {
	case state != initial:
		res.Recover = -1
	case !tripped && res.Detect < 0:
		res.Recover = NotTripped
	}
	if sentBase > 0 {
		res.Refused = float64(refusedBase) / float64(sentBase)
	}
	return res, nil
}

// simClock is guard.Clock on virtual time, with AfterFunc, so that the
// policies' timers run at their virtual time too.
type simClock struct {
	now    time.Time
	events events
	seq    int
}

func (c *simClock) Now() time.Time { return c.now }

// AfterFunc runs f when the clock passes now + d.
func (c *simClock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	e := c.schedule(c.now.Add(d), f)
	return func() bool {
		if e.f == nil {
			return false
		}
		e.f = nil
		return true
	}
}

func (c *simClock) schedule(at time.Time, f func()) *event {
	c.seq++
	e := &event{at: at, seq: c.seq, f: f}
	heap.Push(&c.events, e)
	return e
}

// runUntil runs every event due by t, in time order, and moves the clock
// to t.
func (c *simClock) runUntil(t time.Time) {
	for len(c.events) > 0 && !c.events[0].at.After(t) {
		e := heap.Pop(&c.events).(*event)
		c.now = e.at
		if f := e.f; f != nil {
			e.f = nil
			f()
		}
	}
	c.now = t
}

type event struct {
	at  time.Time
	seq int
	f   func()
}

type events []*event

func (h events) Len() int { return len(h) }
func (h events) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h events) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *events) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *events) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
