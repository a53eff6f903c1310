package session

import (
	"context"
	"slices"

	"github.com/resctl/resctl/harness"
)

// series is one proxy's traffic, a point a second, as the proxy counted
// it: whoever sent it, the session's load or anyone else.
type series struct {
	after  int64
	points []harness.TrafficSecond
}

func (s *Session) pollTraffic(ctx context.Context, proxy string) {
	s.mu.Lock()
	sr := s.traffic[proxy]
	if sr == nil {
		sr = &series{after: -1}
		s.traffic[proxy] = sr
	}
	after := sr.after
	s.mu.Unlock()
	page, err := s.opts.Admin.Traffic(ctx, proxy, after)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if after < 0 {
		// The first look: only what the live view shows.
		page.Seconds = page.Seconds[max(len(page.Seconds)-HistorySeconds, 0):]
	}
	for _, p := range page.Seconds {
		if p.S > sr.after {
			sr.points = append(sr.points, p)
			sr.after = p.S
		}
	}
	if page.Now-1 > sr.after {
		sr.after = page.Now - 1
	}
	if len(sr.points) > HistorySeconds {
		sr.points = slices.Delete(sr.points, 0, len(sr.points)-HistorySeconds)
	}
}

// Point is one second of a proxy's traffic for the live view.
type Point struct {
	S        int64
	Requests uint64
	Errors   uint64
	P50, P99 float64 // milliseconds
}

// Traffic returns the last n seconds of a proxy's traffic, one point per
// second up to the last complete one, with zeros where nothing passed.
func (s *Session) Traffic(proxy string, n int) []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		return nil
	}
	sr := s.traffic[proxy]
	if sr == nil {
		return make([]Point, n) // nothing seen yet: a flat line
	}
	last := sr.after
	out := make([]Point, n)
	for i := range out {
		out[i].S = last - int64(n-1-i)
	}
	for _, p := range sr.points {
		if i := int(p.S - (last - int64(n-1))); i >= 0 && i < n {
			out[i] = Point{S: p.S, Requests: p.Requests, Errors: p.Errors, P50: p.P50Ms, P99: p.P99Ms}
		}
	}
	return out
}
