package netem

import (
	"fmt"
	"time"
)

// Directions of a network fault, named as the TCP faults' are: upstream
// is what the proxy sends towards its upstream, downstream what comes back.
const (
	Upstream   = "upstream"
	Downstream = "downstream"
	Both       = "both"
)

// Spec is a scenario's network fault: real faults on the link that
// carries a proxy's connections to its upstream (see Link).
type Spec struct {
	Faults `yaml:",inline"`
	// Partition makes the packets in Direction vanish; it takes no other
	// parameter but the direction.
	Partition bool `yaml:"partition"`
	// Direction is downstream, upstream or both. The default is both for
	// a partition (a full cut) and downstream for the others. A delay on
	// both directions is added twice to a round trip.
	Direction string `yaml:"direction"`
	// Schedule makes the fault flap within its phase.
	Schedule Schedule `yaml:"schedule"`
}

// Schedule makes a network fault come and go: on for On, then off for
// Off, repeating from the start of its phase — a flapping link. Both are
// set or neither, and at least MinWindow.
type Schedule struct {
	// On is how long the fault is on in each cycle.
	On time.Duration `yaml:"on"`
	// Off is how long it is off in each cycle.
	Off time.Duration `yaml:"off"`
}

// MinWindow is the shortest on or off window of a flapping fault.
const MinWindow = 100 * time.Millisecond

// Kind is the fault's kind in scenarios.
func (*Spec) Kind() string { return "network" }

// Check reports every problem, naming fields as a scenario would.
func (s *Spec) Check(problem func(field, msg string)) {
	switch on, off := s.Schedule.On, s.Schedule.Off; {
	case (on > 0) != (off > 0) || on < 0 || off < 0:
		problem("schedule.on", "on and off are both above zero or both unset, e.g. on: 5s, off: 10s")
	case on > 0 && (on < MinWindow || off < MinWindow):
		problem("schedule.on", fmt.Sprintf("on and off are at least %v each: switching the link takes tens of milliseconds", MinWindow))
	}
	switch s.Direction {
	case "", Upstream, Downstream, Both:
	default:
		problem("direction", fmt.Sprintf("%q: must be upstream, downstream or both", s.Direction))
	}
	if s.Partition {
		if s.Faults != (Faults{}) {
			problem("partition", "a partition drops every packet: it takes no delay, loss, duplicate, corrupt or rate")
		}
		return
	}
	if s.Faults == (Faults{}) {
		problem("delay", "set at least one of delay, loss, duplicate, corrupt, rate, or partition: true")
		return
	}
	s.Faults.Check(problem)
}

// Sides are the ends of the link whose leaving packets the fault acts on:
// A is the proxy's end, B the upstream's.
func (s *Spec) Sides() []Side {
	switch {
	case s.Direction == Upstream:
		return []Side{A}
	case s.Direction == Both, s.Direction == "" && s.Partition:
		return []Side{A, B}
	}
	return []Side{B}
}
