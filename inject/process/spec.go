package process

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/resctl/resctl/quantity"
)

// Defaults for parameters left out.
const (
	// DefaultKillSignal is what kill sends: the process gets no chance to
	// clean up, as when a machine or container dies.
	DefaultKillSignal = "SIGKILL"
	// DefaultRestartSignal is what restart sends first, as a deploy does.
	DefaultRestartSignal = "SIGTERM"
	// DefaultGrace is how long a process may take to exit after a signal
	// other than SIGKILL before SIGKILL follows.
	DefaultGrace = 10 * time.Second
)

// Limits on parameters, so a typo cannot make a run wait for hours.
const (
	MaxGrace = 5 * time.Minute
	// MinEvery bounds how often an action repeats: a process is not
	// killed again before it could have been started.
	MinEvery = 500 * time.Millisecond
)

// Signals are the signal names kill and restart may send.
var Signals = []string{"SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"}

// Spec is one process fault of a phase.
type Spec interface {
	// Kind is the fault's kind name: kill, pause or restart.
	Kind() string
	// Target names the process the fault acts on.
	Target() string
	// When says at which offsets of its phase the fault acts.
	When() Schedule
	// Check reports every problem of the parameters.
	Check(problem func(field, msg string))
}

var (
	_ Spec = (*Kill)(nil)
	_ Spec = (*Pause)(nil)
	_ Spec = (*Restart)(nil)
)

// kinds maps a kind name to a new spec of it.
var kinds = map[string]func() Spec{
	"kill":    func() Spec { return &Kill{} },
	"pause":   func() Spec { return &Pause{} },
	"restart": func() Spec { return &Restart{} },
}

// NewSpec returns an empty spec of the named kind.
func NewSpec(kind string) (Spec, bool) {
	f, ok := kinds[kind]
	if !ok {
		return nil, false
	}
	return f(), true
}

// Kinds lists the process faults' kind names, sorted.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Schedule says when within its phase a fault acts.
type Schedule struct {
	// At is the offset into the phase of the first action; default 0,
	// the phase's start.
	At time.Duration `yaml:"at"`
	// Every repeats the action for the rest of the phase; 0 acts once.
	Every time.Duration `yaml:"every"`
	// Percent is the share of a service's instances each action takes
	// when the fault names a service with replicas, at least one:
	// default one instance for kill and pause, and every instance, one
	// at a time, for restart.
	Percent quantity.Percent `yaml:"percent"`
}

// Instances is how many of n instances one action takes; all is the
// default when Percent is unset.
func (s Schedule) Instances(n int, all bool) int {
	switch {
	case n <= 0:
		return 0
	case s.Percent <= 0 && all:
		return n
	case s.Percent <= 0:
		return 1
	}
	k := int(math.Ceil(float64(n) * float64(s.Percent) / 100))
	return max(1, min(k, n))
}

// Offsets are the offsets into a phase of length d at which the fault
// acts: At, then every Every while before d.
func (s Schedule) Offsets(d time.Duration) []time.Duration {
	if s.At >= d {
		return nil
	}
	out := []time.Duration{s.At}
	if s.Every > 0 {
		for t := s.At + s.Every; t < d; t += s.Every {
			out = append(out, t)
		}
	}
	return out
}

func (s Schedule) check(problem func(field, msg string)) {
	if s.At < 0 {
		problem("at", "must not be negative")
	}
	if s.Percent < 0 || s.Percent > 100 {
		problem("percent", "must be between 0% and 100%")
	}
	if s.Every != 0 && s.Every < MinEvery {
		problem("every", fmt.Sprintf("is at least %v, or leave it out to act once", MinEvery))
	}
}

// Kill sends a process a signal (SIGKILL by default) and, with Restart,
// starts it again with the same command, environment and readiness check.
type Kill struct {
	// Process names the process: target, a service's name, or one
	// instance of a service with replicas (orders.2).
	Process string `yaml:"process"`
	// Signal is sent to the process's group; default SIGKILL.
	Signal string `yaml:"signal"`
	// Grace is how long a process may take to exit on a signal other
	// than SIGKILL before SIGKILL follows; default 10s.
	Grace time.Duration `yaml:"grace"`
	// Restart starts the process again once it has exited, after
	// RestartAfter.
	Restart bool `yaml:"restart"`
	// RestartAfter is how long after the exit the process is started again.
	RestartAfter time.Duration `yaml:"restart_after"`
	// StayDown keeps a process killed without restart down after its
	// phase; by default it is started again as the phase ends.
	StayDown bool `yaml:"stay_down"`
	Schedule `yaml:",inline"`
}

// Kind implements Spec.
func (*Kill) Kind() string { return "kill" }

// Target implements Spec.
func (k *Kill) Target() string { return k.Process }

// When implements Spec.
func (k *Kill) When() Schedule { return k.Schedule }

// SignalName is the signal kill sends.
func (k *Kill) SignalName() string { return orDefault(k.Signal, DefaultKillSignal) }

// GraceOrDefault is the grace period after a signal other than SIGKILL.
func (k *Kill) GraceOrDefault() time.Duration { return graceOr(k.Grace) }

// Check implements Spec.
func (k *Kill) Check(problem func(field, msg string)) {
	checkTarget(k.Process, problem)
	checkSignal(k.Signal, problem)
	checkGrace(k.Grace, problem)
	if k.RestartAfter < 0 {
		problem("restart_after", "must not be negative")
	}
	if k.RestartAfter > 0 && !k.Restart {
		problem("restart_after", "needs restart: true")
	}
	if k.StayDown && k.Restart {
		problem("stay_down", "a process killed with restart: true comes back by itself: leave out one of the two")
	}
	k.Schedule.check(problem)
}

// Pause freezes a process with SIGSTOP for Duration, then continues it
// with SIGCONT: to its clients it is a long GC or VM pause.
type Pause struct {
	// Process names the process: target, or a service's name.
	Process string `yaml:"process"`
	// Duration is how long the process stays frozen.
	Duration time.Duration `yaml:"duration"`
	Schedule `yaml:",inline"`
}

// Kind implements Spec.
func (*Pause) Kind() string { return "pause" }

// Target implements Spec.
func (p *Pause) Target() string { return p.Process }

// When implements Spec.
func (p *Pause) When() Schedule { return p.Schedule }

// Check implements Spec.
func (p *Pause) Check(problem func(field, msg string)) {
	checkTarget(p.Process, problem)
	if p.Duration <= 0 {
		problem("duration", "is required: how long the process stays frozen, e.g. duration: 3s")
	}
	if p.Every > 0 && p.Duration >= p.Every {
		problem("duration", fmt.Sprintf("%v is not shorter than every: %v; a pause must end before the next begins", p.Duration, p.Every))
	}
	p.Schedule.check(problem)
}

// Restart stops a process gracefully and starts it again, as a deploy
// does; a service's instances are restarted one at a time, each ready
// before the next stops.
type Restart struct {
	// Process names the process: target, or a service's name.
	Process string `yaml:"process"`
	// Signal is the graceful stop; default SIGTERM.
	Signal string `yaml:"signal"`
	// Grace is how long the process may take to exit before SIGKILL;
	// default 10s.
	Grace    time.Duration `yaml:"grace"`
	Schedule `yaml:",inline"`
}

// Kind implements Spec.
func (*Restart) Kind() string { return "restart" }

// Target implements Spec.
func (r *Restart) Target() string { return r.Process }

// When implements Spec.
func (r *Restart) When() Schedule { return r.Schedule }

// SignalName is the signal restart stops the process with.
func (r *Restart) SignalName() string { return orDefault(r.Signal, DefaultRestartSignal) }

// GraceOrDefault is the grace period after the signal.
func (r *Restart) GraceOrDefault() time.Duration { return graceOr(r.Grace) }

// Check implements Spec.
func (r *Restart) Check(problem func(field, msg string)) {
	checkTarget(r.Process, problem)
	checkSignal(r.Signal, problem)
	checkGrace(r.Grace, problem)
	r.Schedule.check(problem)
}

func checkTarget(name string, problem func(field, msg string)) {
	if name == "" {
		problem("process", "is required: target, or the name of one of services:")
	}
}

func checkSignal(name string, problem func(field, msg string)) {
	if name != "" && !slices.Contains(Signals, name) {
		problem("signal", fmt.Sprintf("unknown signal %q; use one of %s", name, strings.Join(Signals, ", ")))
	}
}

func checkGrace(g time.Duration, problem func(field, msg string)) {
	if g < 0 || g > MaxGrace {
		problem("grace", fmt.Sprintf("must be between 0 and %v", MaxGrace))
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func graceOr(g time.Duration) time.Duration {
	if g <= 0 {
		return DefaultGrace
	}
	return g
}
