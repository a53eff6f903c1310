package guard

import (
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// attemptUnder returns an attempt of a request whose context is parent.
func attemptUnder(parent context.Context, deadline time.Time) *attemptCtx {
	return newAttempt(httptest.NewRequest("GET", "/", nil).WithContext(parent), parent, sysDeadline(deadline))
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestAttemptCtx_Err(t *testing.T) {
	past, future := time.Now().Add(-time.Millisecond), time.Now().Add(time.Hour)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		parent   context.Context
		deadline time.Time
		cancel   bool // cancel the attempt before asking
		want     error
	}{
		{"live", context.Background(), future, false, nil},
		{"no deadline of its own", context.Background(), time.Time{}, false, nil},
		{"past its deadline", context.Background(), past, false, context.DeadlineExceeded},
		{"its parent cancelled", cancelled, future, false, context.Canceled},
		{"cancelled", context.Background(), future, true, context.Canceled},
		{"cancelled past its deadline: as an eager context would be", context.Background(), past, true, context.DeadlineExceeded},
		{"cancelled after its parent", cancelled, future, true, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, watched := range []bool{false, true} {
				a := attemptUnder(tt.parent, tt.deadline)
				if watched {
					a.Done()
				}
				if tt.cancel {
					a.cancel(context.Canceled)
				}
				if err := a.Err(); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
					t.Errorf("watched %v: Err() = %v, want %v", watched, err, tt.want)
				}
				if got := closed(a.Done()); got != (tt.want != nil) {
					t.Errorf("watched %v: Done closed %v, want %v", watched, got, tt.want != nil)
				}
				if err := context.Cause(a); !errors.Is(err, tt.want) {
					t.Errorf("watched %v: Cause = %v, want %v", watched, err, tt.want)
				}
			}
		})
	}
}

func TestAttemptCtx_Deadline(t *testing.T) {
	own := time.Now().Add(time.Minute)
	parent, cancel := context.WithDeadline(context.Background(), own.Add(time.Minute))
	defer cancel()
	if dl, ok := attemptUnder(parent, own).Deadline(); !ok || !dl.Equal(own) {
		t.Errorf("Deadline() = %v, %v; want its own, %v", dl, ok, own)
	}
	pdl, _ := parent.Deadline()
	if dl, ok := attemptUnder(parent, time.Time{}).Deadline(); !ok || !dl.Equal(pdl) {
		t.Errorf("Deadline() = %v, %v; want the parent's, %v", dl, ok, pdl)
	}
	if _, ok := attemptUnder(context.Background(), time.Time{}).Deadline(); ok {
		t.Error("an attempt with no deadline under Background has one")
	}
}

// TestAttemptCtx_Done: once watched, the attempt ends by itself at its
// deadline and with its parent, as context.WithDeadline does.
func TestAttemptCtx_Done(t *testing.T) {
	wait := func(t *testing.T, a *attemptCtx, want error) {
		t.Helper()
		select {
		case <-a.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed")
		}
		if err := a.Err(); err != want {
			t.Errorf("Err() = %v, want %v", err, want)
		}
	}
	t.Run("at its deadline", func(t *testing.T) {
		wait(t, attemptUnder(context.Background(), time.Now().Add(time.Millisecond)), context.DeadlineExceeded)
	})
	t.Run("with its parent", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		a := attemptUnder(parent, time.Now().Add(time.Hour))
		a.Done()
		cancel()
		wait(t, a, context.Canceled)
	})
	t.Run("with a parent attempt", func(t *testing.T) {
		outer := attemptUnder(context.Background(), time.Now().Add(time.Hour))
		a := attemptUnder(outer, time.Time{})
		a.Done()
		outer.cancel(context.Canceled)
		wait(t, a, context.Canceled)
	})
}

// TestAttemptCtx_AfterFunc: contexts made under an attempt, and functions
// to run after it, hear of its end.
func TestAttemptCtx_AfterFunc(t *testing.T) {
	a := attemptUnder(context.Background(), time.Now().Add(time.Hour))
	child, cancelChild := context.WithCancel(a)
	defer cancelChild()
	ran := make(chan struct{})
	context.AfterFunc(a, func() { close(ran) })
	stopped := false
	stop := context.AfterFunc(a, func() { stopped = true })
	if !stop() {
		t.Error("stop before the end reported false")
	}
	a.cancel(context.Canceled)
	for _, ch := range []<-chan struct{}{child.Done(), ran} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("not told of the attempt's end")
		}
	}
	if stopped {
		t.Error("a stopped function ran")
	}
	if stop() {
		t.Error("stop after the end reported true")
	}
	late := make(chan struct{})
	context.AfterFunc(a, func() { close(late) })
	select {
	case <-late:
	case <-time.After(5 * time.Second):
		t.Fatal("a function registered after the end did not run")
	}
}

func TestHeaderValues(t *testing.T) {
	var c headerValues
	c.format = func(n int64) string { return strconv.FormatInt(n, 10) }
	a, b := c.get(1000), c.get(1000)
	if a[0] != "1000" || &a[0] != &b[0] {
		t.Errorf("get(1000) = %q then %q at another address: want one shared value", a, b)
	}
	if cap(a) != 1 {
		t.Errorf("cap %d: appending to a shared value would write into it", cap(a))
	}
	if v := c.get(1000 + int64(len(c.slots))); v[0] != "1064" {
		t.Errorf("get(1064) = %q", v)
	}
	if v := c.get(1000); v[0] != "1000" || &v[0] == &a[0] {
		t.Errorf("get(1000) after its slot was taken = %q at the old address", v)
	}
}
