package load

import (
	"math"
	"time"
)

// Step is a stretch of the schedule, such as one scenario phase: at a
// constant Rate, or shaped by Segments.
type Step struct {
	// Name labels the step, e.g. the scenario phase it runs.
	Name     string
	Duration time.Duration
	// Rate is in requests per second, for a step without Segments.
	Rate float64
	// Segments, when set, shape the step's rate: each moves linearly from
	// its From to its To rate over its Duration (From == To is constant),
	// so a ramp is one segment, steps several constant ones, a spike three.
	// Their durations add up to the step's; see Ramp, Stairs and Spike.
	Segments []Segment
}

// Segment is a stretch of a step whose rate changes linearly.
type Segment struct {
	Duration time.Duration
	// From and To are the rates at the segment's start and end, in
	// requests per second.
	From, To float64
}

// Ramp is a step whose rate moves linearly from one rate to another.
func Ramp(name string, d time.Duration, from, to float64) Step {
	return Step{Name: name, Duration: d, Segments: []Segment{{d, from, to}}}
}

// Stairs is a step divided into equal stretches at the given rates.
func Stairs(name string, d time.Duration, rates ...float64) Step {
	st := Step{Name: name, Duration: d}
	if len(rates) == 0 {
		return st
	}
	each := d / time.Duration(len(rates))
	for i, r := range rates {
		sd := each
		if i == len(rates)-1 {
			sd = d - each*time.Duration(len(rates)-1) // the rounding goes to the last
		}
		st.Segments = append(st.Segments, Segment{sd, r, r})
	}
	return st
}

// Spike is a step at a base rate with a burst at peak rate from at to
// at+length (both clipped to the step).
func Spike(name string, d time.Duration, base, peak float64, at, length time.Duration) Step {
	at = min(max(at, 0), d)
	end := min(at+length, d)
	st := Step{Name: name, Duration: d}
	for _, s := range []Segment{{at, base, base}, {end - at, peak, peak}, {d - end, base, base}} {
		if s.Duration > 0 {
			st.Segments = append(st.Segments, s)
		}
	}
	return st
}

// Pacer is a vegeta.Pacer that runs a sequence of steps as one schedule:
// the hit count carries across step boundaries, so a step starts exactly
// on time, no step's hits leak into the next, and connections are not
// reset between steps.
type Pacer struct {
	steps []Step
	segs  []seg
	// stepEnd is the hits scheduled by the end of each step.
	stepEnd []float64
	total   time.Duration
	// shard and shards, when shards > 1, make this pacer send only the
	// hits k of the whole schedule with k mod shards == shard.
	shard, shards uint64
}

// eps keeps a cumulative hit count that float sums put a hair above a
// whole number (400/s × 1.225 s = 490.00000000000006) from claiming one
// hit more than the schedule has.
const eps = 1e-9

// Shard returns a pacer for shard i of n (1 ≤ i ≤ n) of this schedule: it
// sends hits i-1, i-1+n, i-1+2n, … of the whole schedule, each when the
// whole schedule has it due, so n shards together send exactly the
// schedule, interleaved, not n bursts at 1/n of the rate.
func (p *Pacer) Shard(i, n int) *Pacer {
	q := *p
	if n > 1 && i >= 1 && i <= n {
		q.shard, q.shards = uint64(i-1), uint64(n)
	}
	return &q
}

// global is the whole schedule's index of this pacer's hit k.
func (p *Pacer) global(k uint64) uint64 {
	if p.shards <= 1 {
		return k
	}
	return k*p.shards + p.shard
}

// seg is a segment placed on the schedule.
type seg struct {
	Segment
	start  time.Duration
	before float64 // hits scheduled before it starts
	step   int
}

// hits is how many hits the segment schedules in its first t.
func (s seg) hits(t time.Duration) float64 {
	x := t.Seconds()
	if s.Duration <= 0 {
		return 0
	}
	return s.From*x + (s.To-s.From)*x*x/(2*s.Duration.Seconds())
}

// rate is the segment's rate at t into it.
func (s seg) rate(t time.Duration) float64 {
	if s.Duration <= 0 {
		return s.From
	}
	return s.From + (s.To-s.From)*t.Seconds()/s.Duration.Seconds()
}

// timeOf is when, into the segment, it has scheduled k hits: the root of
// From·x + a·x² = k with a = (To-From)/2d, in the form that stays exact
// when a is zero or negative.
func (s seg) timeOf(k float64) float64 {
	a := (s.To - s.From) / (2 * s.Duration.Seconds())
	disc := s.From*s.From + 4*a*k
	den := s.From + math.Sqrt(max(disc, 0))
	if den <= 0 {
		return 0
	}
	return 2 * k / den
}

// NewPacer returns a Pacer for the given steps.
func NewPacer(steps []Step) *Pacer {
	p := &Pacer{steps: steps}
	var at time.Duration
	var hits float64
	for i, st := range steps {
		parts := st.Segments
		if len(parts) == 0 {
			parts = []Segment{{st.Duration, st.Rate, st.Rate}}
		}
		for _, part := range parts {
			s := seg{Segment: part, start: at, before: hits, step: i}
			p.segs = append(p.segs, s)
			at += part.Duration
			hits += s.hits(part.Duration)
		}
		p.stepEnd = append(p.stepEnd, hits)
	}
	p.total = at
	return p
}

// Duration is the length of the whole schedule.
func (p *Pacer) Duration() time.Duration { return p.total }

// Hits is how many requests the schedule sends in its first t.
func (p *Pacer) Hits(t time.Duration) float64 {
	if len(p.segs) == 0 || t <= 0 {
		return 0
	}
	t = min(t, p.total)
	s := p.segs[p.segAt(t)]
	h := s.before + s.hits(t-s.start)
	if p.shards > 1 {
		return max(h-float64(p.shard), 0) / float64(p.shards)
	}
	return h
}

// StepOf returns the index of the step that hit k (counting from 0) is
// scheduled in, so a request can be attributed to its phase by its place in
// the schedule rather than by the clock, which is racy at a boundary. Hits
// beyond the schedule belong to the last step.
func (p *Pacer) StepOf(k uint64) int {
	g := float64(p.global(k))
	for i, end := range p.stepEnd {
		if g < end-eps {
			return i
		}
	}
	return len(p.steps) - 1
}

// Rate is the scheduled rate at t, in requests per second.
func (p *Pacer) Rate(t time.Duration) float64 {
	if t < 0 || t >= p.total {
		return 0
	}
	s := p.segs[p.segAt(t)]
	if p.shards > 1 {
		return s.rate(t-s.start) / float64(p.shards)
	}
	return s.rate(t - s.start)
}

func (p *Pacer) segAt(t time.Duration) int {
	i := len(p.segs) - 1
	for i > 0 && p.segs[i].start > t {
		i--
	}
	return i
}

// Pace implements vegeta.Pacer: how long to wait before the next hit, given
// the time elapsed and the hits sent so far. Hit k (counting from 0) is due
// when the schedule has accumulated k hits, so the first goes out at once and
// the last before the schedule ends; a generator that fell behind is told to
// send at once.
func (p *Pacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	at, ok := p.TimeOfHit(hits)
	if !ok || at >= p.total {
		return 0, true
	}
	return max(at-elapsed, 0), false
}

// TimeOfHit is the instant, from the schedule's start, hit k (counting
// from 0) is due: its intended send time, from which its response time is
// measured whenever it was really sent. ok is false for a hit beyond the
// schedule.
func (p *Pacer) TimeOfHit(k uint64) (time.Duration, bool) {
	kf := float64(p.global(k))
	for _, s := range p.segs {
		end := s.before + s.hits(s.Duration)
		if kf < end-eps && (s.From > 0 || s.To > 0) {
			secs := s.timeOf(kf - s.before)
			return s.start + min(time.Duration(math.Ceil(secs*float64(time.Second))), s.Duration), true
		}
	}
	return 0, false
}
