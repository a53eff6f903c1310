package load

import (
	"math"
	"time"
)

// Step is a stretch of the schedule at a constant rate.
type Step struct {
	// Name labels the step, e.g. the scenario phase it runs.
	Name     string
	Duration time.Duration
	// Rate is in requests per second.
	Rate float64
}

// Pacer is a vegeta.Pacer that runs a sequence of constant-rate steps as one
// schedule: the hit count carries across step boundaries, so a step starts
// exactly on time and no step's hits leak into the next.
type Pacer struct {
	steps  []Step
	starts []time.Duration // start offset of each step
	before []float64       // hits scheduled before each step starts
	total  time.Duration
}

// NewPacer returns a Pacer for the given steps.
func NewPacer(steps []Step) *Pacer {
	p := &Pacer{steps: steps}
	var at time.Duration
	var hits float64
	for _, s := range steps {
		p.starts = append(p.starts, at)
		p.before = append(p.before, hits)
		at += s.Duration
		hits += s.Rate * s.Duration.Seconds()
	}
	p.total = at
	return p
}

// Duration is the length of the whole schedule.
func (p *Pacer) Duration() time.Duration { return p.total }

// Hits is how many requests the schedule sends in its first t.
func (p *Pacer) Hits(t time.Duration) float64 {
	if len(p.steps) == 0 || t <= 0 {
		return 0
	}
	t = min(t, p.total)
	i := p.stepAt(t)
	return p.before[i] + p.steps[i].Rate*(t-p.starts[i]).Seconds()
}

// StepOf returns the index of the step that hit k (counting from 0) is
// scheduled in, so a request can be attributed to its phase by its place in
// the schedule rather than by the clock, which is racy at a boundary. Hits
// beyond the schedule belong to the last step.
func (p *Pacer) StepOf(k uint64) int {
	for i, s := range p.steps {
		if float64(k) < p.before[i]+s.Rate*s.Duration.Seconds() {
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
	return p.steps[p.stepAt(t)].Rate
}

func (p *Pacer) stepAt(t time.Duration) int {
	i := len(p.steps) - 1
	for i > 0 && p.starts[i] > t {
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
	at, ok := p.timeOfHit(float64(hits))
	if !ok || at >= p.total {
		return 0, true
	}
	return max(at-elapsed, 0), false
}

// timeOfHit is the instant the schedule has accumulated k hits.
func (p *Pacer) timeOfHit(k float64) (time.Duration, bool) {
	for i, s := range p.steps {
		end := p.before[i] + s.Rate*s.Duration.Seconds()
		if s.Rate > 0 && k < end {
			secs := (k - p.before[i]) / s.Rate
			return p.starts[i] + time.Duration(math.Ceil(secs*float64(time.Second))), true
		}
	}
	return 0, false
}
