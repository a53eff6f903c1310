package inject

import (
	"fmt"
	"strings"
	"time"

	"github.com/resctl/resctl/quantity"
)

// Schedule narrows when a fault acts on the requests (or connections) its
// selector matched. Every rule counts from the fault's activation: First and
// Every count matched requests, On/Off and Ramp measure time on the board's
// clock. With the board's seed, the same traffic meets the same decisions.
type Schedule struct {
	// First limits the fault to the first N matched requests.
	First uint64 `yaml:"first"`
	// Every makes the fault consider only every Nth matched request (the
	// Nth, 2Nth, …).
	Every uint64 `yaml:"every"`
	// On and Off make the fault act in windows: On long, then quiet for
	// Off, repeating. Both are set or neither.
	On time.Duration `yaml:"on"`
	// Off is how long the fault is quiet between windows.
	Off time.Duration `yaml:"off"`
	// Ramp moves the probability linearly over time; it replaces percent.
	Ramp Ramp `yaml:"ramp"`
}

// Ramp raises (or lowers) a fault's probability from From to To over Over,
// then holds To: a fault that worsens gradually, as a saturating dependency
// does.
type Ramp struct {
	// From is the probability at the fault's start.
	From quantity.Percent `yaml:"from"`
	// To is the probability reached after Over, and held.
	To quantity.Percent `yaml:"to"`
	// Over is how long the ramp takes.
	Over time.Duration `yaml:"over"`
}

// IsZero reports whether no ramp is configured.
func (r Ramp) IsZero() bool { return r == Ramp{} }

// IsZero reports whether the schedule sets nothing: the fault acts on each
// match with its percent.
func (s Schedule) IsZero() bool { return s == Schedule{} }

func (s Schedule) check(problem func(field, msg string)) {
	if (s.On > 0) != (s.Off > 0) || s.On < 0 || s.Off < 0 {
		problem("on", "on and off are both above zero or both unset, e.g. on: 5s, off: 10s")
	}
	if s.Ramp.IsZero() {
		return
	}
	if s.Ramp.Over <= 0 {
		problem("ramp.over", "must be above zero, e.g. 30s")
	}
	for f, p := range map[string]quantity.Percent{"ramp.from": s.Ramp.From, "ramp.to": s.Ramp.To} {
		if !(p >= 0 && p <= 100) {
			problem(f, fmt.Sprintf("%v is outside 0%%..100%%", float64(p)))
		}
	}
}

// eligible reports whether the nth matched request (1-based), at elapsed
// time since activation, may be acted on, and with what probability.
func (s Schedule) eligible(n uint64, elapsed time.Duration, percent quantity.Percent) (bool, float64) {
	if s.First > 0 && n > s.First {
		return false, 0
	}
	if s.Every > 0 && n%s.Every != 0 {
		return false, 0
	}
	if s.On > 0 && elapsed%(s.On+s.Off) >= s.On {
		return false, 0
	}
	if s.Ramp.IsZero() {
		return true, percent.Fraction()
	}
	return true, s.Ramp.at(elapsed)
}

func (r Ramp) at(elapsed time.Duration) float64 {
	f := 1.0
	if elapsed < r.Over {
		f = float64(max(elapsed, 0)) / float64(r.Over)
	}
	return r.From.Fraction() + (r.To.Fraction()-r.From.Fraction())*f
}

// needsClock reports whether decisions depend on time.
func (s Schedule) needsClock() bool { return s.On > 0 || !s.Ramp.IsZero() }

// expected is the share of matches the schedule is set to act on over a
// fault's first `active` of time: what a report compares the effective
// rate with. First is not counted in: it caps a number, not a share.
func (s Schedule) expected(percent quantity.Percent, active time.Duration) float64 {
	p := percent.Fraction()
	if !s.Ramp.IsZero() {
		// The mean of the ramp over the active time.
		if active <= 0 {
			p = s.Ramp.From.Fraction()
		} else {
			ramped := min(active, s.Ramp.Over)
			mean := (s.Ramp.From.Fraction() + s.Ramp.at(ramped)) / 2
			p = (mean*float64(ramped) + s.Ramp.To.Fraction()*float64(active-ramped)) / float64(active)
		}
	}
	if s.Every > 0 {
		p /= float64(s.Every)
	}
	if s.On > 0 {
		p *= float64(s.On) / float64(s.On+s.Off)
	}
	return p
}

// MarshalText prints the schedule compactly for reports, e.g.
// "first=100 every=5 on=5s off=10s ramp=0%..50%/30s".
func (s Schedule) MarshalText() ([]byte, error) {
	var parts []string
	if s.First > 0 {
		parts = append(parts, fmt.Sprintf("first=%d", s.First))
	}
	if s.Every > 0 {
		parts = append(parts, fmt.Sprintf("every=%d", s.Every))
	}
	if s.On > 0 {
		parts = append(parts, "on="+s.On.String(), "off="+s.Off.String())
	}
	if !s.Ramp.IsZero() {
		parts = append(parts, fmt.Sprintf("ramp=%s..%s/%s", s.Ramp.From, s.Ramp.To, s.Ramp.Over))
	}
	return []byte(strings.Join(parts, " ")), nil
}
