package inject

import "net/http"

// GRPCResetSpec lets matching gRPC calls reach the upstream and resets
// their HTTP/2 stream (RST_STREAM) once After response messages have
// reached the client: a server that crashed mid-call, or a middlebox that
// dropped it. The upstream has received and usually handled the call; the
// client does not learn how it ended. gRPC clients report a reset stream
// as INTERNAL ("stream terminated by RST_STREAM with error code:
// INTERNAL_ERROR"), the code net/http resets an aborted handler's stream
// with.
type GRPCResetSpec struct {
	GRPCMatch `yaml:",inline"`
	// After is how many response messages pass before the reset; zero
	// resets the stream before the first (right after the upstream
	// starts answering). A call that ends with fewer is reset at its end,
	// in place of its status.
	After uint64 `yaml:"after"`
}

var _ HTTPSpec = (*GRPCResetSpec)(nil)

// Kind implements Spec.
func (*GRPCResetSpec) Kind() string { return "reset" }

// Check implements Spec.
func (s *GRPCResetSpec) Check(problem func(field, msg string)) { s.GRPCMatch.check(problem) }

// Build implements HTTPSpec.
func (s *GRPCResetSpec) Build() HTTPFault { return &grpcReset{after: s.After} }

type grpcReset struct{ after uint64 }

var _ ResponseFault = (*grpcReset)(nil)

// Inject lets the call through; the reset happens in the response.
func (*grpcReset) Inject(http.ResponseWriter, *http.Request) bool { return false }

// WrapResponse passes the first messages and then resets the stream.
func (f *grpcReset) WrapResponse(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	rw := &grpcResetWriter{respWriter: respWriter{ResponseWriter: w}, r: r, after: f.after}
	return rw, rw.reset
}

type grpcResetWriter struct {
	respWriter
	r      *http.Request
	after  uint64
	frames grpcFrames
	done   bool
}

// Write passes bytes up to the end of the last message allowed through,
// then resets: at once when that message is complete, so that a stream
// which goes quiet afterwards is reset all the same.
func (w *grpcResetWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errCut
	}
	w.header()
	n := w.frames.feed(p, w.after)
	if n > 0 {
		if m, err := w.ResponseWriter.Write(p[:n]); err != nil {
			return m, err
		}
	}
	if w.frames.msgs < w.after {
		return n, nil
	}
	w.reset()
	return n, errCut
}

func (w *grpcResetWriter) reset() {
	if w.done {
		return
	}
	w.done = true
	w.header()
	abortConnection(w.ResponseWriter, w.r)
}
