package guard

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// lateClock's timers have always just gone off when stopped: stop reports
// false, and their functions wait for the test to run them.
type lateClock struct {
	mu    sync.Mutex
	fired []func()
}

func (*lateClock) Now() time.Time { return time.Unix(1000, 0) }

func (c *lateClock) AfterFunc(_ time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fired = append(c.fired, f)
	return func() bool { return false }
}

func (c *lateClock) take() []func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := c.fired
	c.fired = nil
	return fs
}

// TestHedge_LateTimer: a timer that went off as the first attempt ended
// runs its function after the request is done. The pooled state it
// belongs to must not have been handed to a later request, which it would
// hedge at once.
func TestHedge_LateTimer(t *testing.T) {
	clk := &lateClock{}
	c := DefaultHedgeConfig()
	c.Delay, c.Quantile = time.Second, 0
	c.Budget.Ratio = 100
	h, err := NewHedge("h", c, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	var late []func()
	calls := 0
	mw := NewChain(h).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		for _, f := range late {
			f() // the earlier requests' timers, running late
		}
		w.WriteHeader(http.StatusOK)
	}))
	for i := range 10 {
		mw.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if calls != i+1 {
			t.Fatalf("request %d: %d calls, want %d: a late timer hedged another request", i, calls, i+1)
		}
		late = append(late, clk.take()...)
	}
	if st := h.HedgeStats(); st.Sent != 0 {
		t.Errorf("stats %+v, want no hedge sent", st)
	}
}
