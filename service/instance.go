package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// State is where a started process is in its life, as SLAs read it
// (process("orders") == ready).
type State string

// The states of an Instance.
const (
	// StateStarting: started and not ready yet.
	StateStarting State = "starting"
	// StateReady: running and past its readiness check.
	StateReady State = "ready"
	// StatePaused: frozen by SIGSTOP.
	StatePaused State = "paused"
	// StateDown: not running, killed or exited.
	StateDown State = "down"
)

// States lists every State, the first the one examples use.
var States = []string{string(StateReady), string(StateDown), string(StatePaused), string(StateStarting)}

// ErrDown is returned (wrapped) by an action that needs a running process
// when it is down.
var ErrDown = errors.New("process is down")

// Instance is a process resctl can kill, pause, continue and start again
// while a run goes on, with the same command, environment and readiness
// check each time. It tells every change of its state to the function
// given to OnState.
type Instance struct {
	mu       sync.Mutex
	onState  func(State)
	spec     Spec
	p        *Process
	state    State
	gen      int // counts starts, so a watcher of an old process stays quiet
	expected bool
	restarts int
	ready    []time.Duration // how long each start took to be ready
	closed   bool
}

// NewInstance returns an instance of spec, not started.
func NewInstance(spec Spec) *Instance { return &Instance{spec: spec, state: StateDown} }

// OnState has f called with each new state from now on, in order, with
// the instance's lock held: f must not call the instance.
func (in *Instance) OnState(f func(State)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.onState = f
}

// SetCommand changes the command later starts use, e.g. to pin the port a
// first start picked.
func (in *Instance) SetCommand(command []string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.spec.Command = command
}

// Process is the running process, nil while down.
func (in *Instance) Process() *Process {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.state == StateDown {
		return nil
	}
	return in.p
}

// State is the instance's state now.
func (in *Instance) State() State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.state
}

// Restarts counts the starts after the first.
func (in *Instance) Restarts() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.restarts
}

// ReadyTimes are how long each start took to pass its readiness check,
// the first start's first.
func (in *Instance) ReadyTimes() []time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]time.Duration(nil), in.ready...)
}

func (in *Instance) set(s State) {
	if in.state == s {
		return
	}
	in.state = s
	if in.onState != nil {
		in.onState(s)
	}
}

// Start starts the process if it is down and waits until it is ready.
// A start after the first counts as a restart and adds to the logs.
func (in *Instance) Start(ctx context.Context) error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return fmt.Errorf("service %s: %w: stopped for good", in.spec.Name, ErrDown)
	}
	if in.state != StateDown {
		in.mu.Unlock()
		return nil
	}
	spec := in.spec
	if in.gen > 0 {
		spec.AppendLogs = true
		in.restarts++
	}
	in.gen++
	gen := in.gen
	in.set(StateStarting)
	in.mu.Unlock()

	began := time.Now()
	p, err := Start(ctx, spec)

	in.mu.Lock()
	defer in.mu.Unlock()
	if err != nil {
		in.set(StateDown)
		return err
	}
	if in.closed {
		_ = p.Stop()
		in.set(StateDown)
		return fmt.Errorf("service %s: %w: stopped for good", in.spec.Name, ErrDown)
	}
	in.p, in.expected = p, false
	in.ready = append(in.ready, time.Since(began))
	in.set(StateReady)
	go in.watch(p, gen)
	return nil
}

// watch marks the instance down when its process exits by itself.
func (in *Instance) watch(p *Process, gen int) {
	<-p.Exited()
	_ = p.Stop() // its group's stragglers, and its record
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.gen == gen && !in.expected {
		in.set(StateDown)
	}
}

// Kill sends sig to the process's group and waits for it to exit: up to
// grace for a signal other than SIGKILL, then SIGKILL. A paused process
// is continued so that the signal reaches it.
func (in *Instance) Kill(sig syscall.Signal, grace time.Duration) error {
	in.mu.Lock()
	p := in.p
	if in.state == StateDown || in.state == StateStarting || p == nil {
		in.mu.Unlock()
		return fmt.Errorf("service %s: kill: %w", in.spec.Name, ErrDown)
	}
	in.expected = true
	in.mu.Unlock()

	_ = signalGroup(p.cmd, sig)
	_ = continueGroup(p.cmd)
	if sig != syscall.SIGKILL {
		t := time.NewTimer(grace)
		select {
		case <-p.Exited():
		case <-t.C:
		}
		t.Stop()
	}
	_ = p.Stop() // SIGKILL to what is left, the record removed
	in.mu.Lock()
	defer in.mu.Unlock()
	in.set(StateDown)
	return nil
}

// Pause freezes the process with SIGSTOP until Continue.
func (in *Instance) Pause() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch in.state {
	case StatePaused:
		return nil
	case StateReady:
	default:
		return fmt.Errorf("service %s: pause: %w", in.spec.Name, ErrDown)
	}
	if err := pauseGroup(in.p.cmd, len(in.spec.Supervisor) > 0); err != nil {
		return fmt.Errorf("service %s: %w", in.spec.Name, err)
	}
	in.set(StatePaused)
	return nil
}

// Continue continues a paused process; it does nothing to one that is not
// paused.
func (in *Instance) Continue() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.state != StatePaused {
		return nil
	}
	if err := continueGroup(in.p.cmd); err != nil {
		return fmt.Errorf("service %s: continue: %w", in.spec.Name, err)
	}
	in.set(StateReady)
	return nil
}

// Stop stops the process for good (continued first if paused): later
// starts fail.
func (in *Instance) Stop() error {
	in.mu.Lock()
	in.closed = true
	in.expected = true
	p, running := in.p, in.state != StateDown
	in.mu.Unlock()
	if !running || p == nil {
		return nil
	}
	err := p.Stop()
	in.mu.Lock()
	in.set(StateDown)
	in.mu.Unlock()
	return err
}
