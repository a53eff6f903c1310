package session

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/quantity"
)

// startLoad sends open-loop load through the front proxy in the
// background: rate, duration and an optional path (default /). One load
// runs at a time.
func (s *Session) startLoad(_ context.Context, args []string) (string, error) {
	var rate quantity.Rate
	_ = rate.UnmarshalText([]byte(args[0])) // Parse checked it
	dur, _ := time.ParseDuration(args[1])
	if dur > MaxDuration {
		return "", parseErr("", "load for %v: at most %v", dur, MaxDuration)
	}
	if rate.PerSecond() > 1e6 {
		return "", parseErr("", "load at %s: at most 1000000/s", args[0])
	}
	path := "/"
	if len(args) == 3 {
		path = args[2]
	}
	front, err := s.proxy(s.opts.Front)
	if err != nil {
		return "", err
	}
	grpc := front.Protocol == harness.ProtocolGRPC
	if front.Protocol == harness.ProtocolTCP {
		return "", parseErr("load goes through an http, h2c or grpc proxy", "the front proxy %s is a tcp proxy", front.Name)
	}
	if grpc && s.opts.GRPCCall == "" {
		return "", parseErr("start the session with --call package.Service/Method", "load on the gRPC proxy %s needs a method to call", front.Name)
	}
	s.mu.Lock()
	if s.loadStop != nil {
		s.mu.Unlock()
		return "", parseErr("load stop ends it", "a load is already running")
	}
	if s.closed {
		s.mu.Unlock()
		return "", parseErr("", "the session is closing")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	span := &LoadSpan{Rate: rate.PerSecond(), Path: path, Planned: dur, On: s.elapsed()}
	s.loads = append(s.loads, span)
	s.loadStop, s.loadDone = cancel, done
	s.logf("load", "started %s for %v on %s%s", rate, dur, front.Name, pathNote(grpc, path, s.opts.GRPCCall))
	s.mu.Unlock()

	base := "http://" + front.Listen
	pacer := load.NewPacer([]load.Step{{Name: "session", Duration: dur, Rate: rate.PerSecond()}})
	go func() {
		defer close(done)
		defer cancel()
		var st load.Stats
		var err error
		if grpc {
			st, err = load.RunGRPC(ctx, load.GRPCOptions{
				Target: front.Listen, Call: s.opts.GRPCCall, Pacer: pacer,
				Timeout: s.opts.LoadTimeout, Recorder: s.rec,
			})
		} else {
			st, err = load.Run(ctx, load.Options{
				BaseURL:  base,
				Requests: []load.Request{{Method: http.MethodGet, Path: path}},
				Pacer:    pacer, Timeout: s.opts.LoadTimeout, Recorder: s.rec,
				H2C: front.Protocol == harness.ProtocolH2C,
			})
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		span.Off, span.Done = s.elapsed(), true
		span.Sent, span.Dropped, span.Scheduled = st.Sent, st.Dropped, st.Scheduled
		s.loadStop, s.loadDone = nil, nil
		var l Line
		switch {
		case err != nil:
			span.Err = err.Error()
			l = s.logf("load", "stopped: %v (%d sent)", err, st.Sent)
		case st.Interrupted:
			l = s.logf("load", "stopped after %v: %d requests sent%s", (span.Off - span.On).Round(time.Second), st.Sent, s.outcome(span))
		default:
			l = s.logf("load", "done: %d requests sent in %v%s", st.Sent, dur, s.outcome(span))
		}
		s.background = append(s.background, l)
	}()
	return fmt.Sprintf("load %s for %v through %s%s", rate, dur, front.Name, pathNote(grpc, path, s.opts.GRPCCall)), nil
}

// outcome says how a load's requests fared, and the commonest reason the
// failed ones failed: a load on a path the target does not serve is all
// 404s, which the proxy's error rate (5xx) does not show.
func (s *Session) outcome(span *LoadSpan) string {
	// From the second it started in: Window reads whole seconds.
	sum := s.rec.Window(span.On.Truncate(time.Second), span.Off)
	if sum.Requests == 0 {
		return ""
	}
	text := fmt.Sprintf(", %.1f%% succeeded", 100*sum.SuccessRate())
	top, n := "", uint64(0)
	for r, c := range sum.Reasons {
		if c > n || (c == n && r < top) {
			top, n = r, c
		}
	}
	if n > 0 {
		text += fmt.Sprintf(" (most failed with %s: %d)", top, n)
	}
	return text
}

func pathNote(grpc bool, path, call string) string {
	if grpc {
		return ", calling " + call
	}
	return ", GET " + path
}

func (s *Session) stopLoad() (string, error) {
	s.mu.Lock()
	stop := s.loadStop
	s.mu.Unlock()
	if stop == nil {
		return "no load is running", nil
	}
	stop()
	return "stopping the load", nil
}

// waitLoad waits for a stopped load to end, or for ctx.
func (s *Session) waitLoad(ctx context.Context) {
	s.mu.Lock()
	done := s.loadDone
	s.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// LoadRunning describes the running load, or "".
func (s *Session) LoadRunning() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadStop == nil || len(s.loads) == 0 {
		return ""
	}
	l := s.loads[len(s.loads)-1]
	left := max(l.Planned-(s.elapsed()-l.On), 0).Round(time.Second)
	return fmt.Sprintf("%s/s %s, %v left", trimRate(l.Rate), strings.TrimSpace(l.Path), left)
}

func trimRate(r float64) string { return strings.TrimSuffix(quantity.Rate(r).String(), "/s") }

// wait pauses until d has passed, or until the running load ends.
func (s *Session) wait(ctx context.Context, what string) (string, error) {
	if what == "load" {
		s.mu.Lock()
		done := s.loadDone
		s.mu.Unlock()
		if done == nil {
			return "no load is running", nil
		}
		select {
		case <-done:
			return "", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	d, _ := time.ParseDuration(what)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return "", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
