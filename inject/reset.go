package inject

import (
	"net/http"

	"github.com/resctl/resctl/quantity"
)

// ResetSpec lets matching requests reach the upstream and then resets the
// connection in the middle of the response, after After bytes of its body
// (or at the end of a shorter one): the client sees a connection reset by
// peer (HTTP/1) or a reset stream (HTTP/2) instead of a complete answer.
type ResetSpec struct {
	Match `yaml:",inline"`
	// After is how many body bytes pass before the reset.
	After quantity.Bytes `yaml:"after"`
}

var _ HTTPSpec = (*ResetSpec)(nil)

// Kind implements Spec.
func (*ResetSpec) Kind() string { return "reset" }

// Check implements Spec.
func (s *ResetSpec) Check(problem func(field, msg string)) {
	s.Match.check(problem)
	if s.After < 0 {
		problem("after", "must not be negative")
	}
}

// Build implements HTTPSpec.
func (s *ResetSpec) Build() HTTPFault { return &reset{after: int64(s.After)} }

type reset struct{ after int64 }

var _ ResponseFault = (*reset)(nil)

// Inject lets the request through; the reset happens in the response.
func (*reset) Inject(http.ResponseWriter, *http.Request) bool { return false }

// WrapResponse passes the first bytes of the body and then resets.
func (f *reset) WrapResponse(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	rw := &resetWriter{respWriter: respWriter{ResponseWriter: w}, r: r, left: f.after}
	return rw, rw.reset
}

type resetWriter struct {
	respWriter
	r    *http.Request
	left int64
	done bool
}

func (w *resetWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errCut
	}
	w.header()
	if int64(len(p)) <= w.left {
		w.left -= int64(len(p))
		return w.ResponseWriter.Write(p)
	}
	n, _ := w.ResponseWriter.Write(p[:w.left])
	w.left = 0
	w.reset()
	return n, errCut
}

func (w *resetWriter) reset() {
	if w.done {
		return
	}
	w.done = true
	w.header()
	abortConnection(w.ResponseWriter, w.r)
}
