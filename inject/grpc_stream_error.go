package inject

import (
	"net/http"
	"strconv"

	"google.golang.org/grpc/codes"
)

// GRPCStreamErrorSpec lets matching gRPC calls reach the upstream and ends
// them with a status once After response messages have reached the
// client: a stream that fails part way, as when a server loses its backend
// mid-stream. The messages before arrive intact; then the call ends
// cleanly with Code and Message in its trailers, and the upstream's stream
// is cancelled. A call that ends with fewer messages keeps its own
// status, unless After is zero: then every call ends with the fault's.
type GRPCStreamErrorSpec struct {
	GRPCMatch `yaml:",inline"`
	// After is how many response messages pass before the error.
	After uint64 `yaml:"after"`
	// Code is the status, by name or number; DefaultGRPCCode (UNAVAILABLE)
	// when unset.
	Code GRPCCode `yaml:"code"`
	// Message is the status message; "injected by resctl" when empty.
	Message string `yaml:"message"`
}

var _ HTTPSpec = (*GRPCStreamErrorSpec)(nil)

// Kind implements Spec.
func (*GRPCStreamErrorSpec) Kind() string { return "stream_error" }

// Check implements Spec.
func (s *GRPCStreamErrorSpec) Check(problem func(field, msg string)) {
	s.GRPCMatch.check(problem)
	s.Code.checkError("code", problem)
}

// Build implements HTTPSpec.
func (s *GRPCStreamErrorSpec) Build() HTTPFault {
	msg := s.Message
	if msg == "" {
		msg = defaultGRPCMessage
	}
	return &grpcStreamError{after: s.After, code: codes.Code(s.Code), msg: msg}
}

type grpcStreamError struct {
	after uint64
	code  codes.Code
	msg   string
}

var _ ResponseFault = (*grpcStreamError)(nil)

// Inject lets the call through; the error ends its response.
func (*grpcStreamError) Inject(http.ResponseWriter, *http.Request) bool { return false }

// WrapResponse counts the response's messages and ends it after the last
// one allowed through.
func (f *grpcStreamError) WrapResponse(w http.ResponseWriter, _ *http.Request) (http.ResponseWriter, func()) {
	sw := &streamErrorWriter{f: f}
	sw.respWriter = respWriter{ResponseWriter: w, onHeader: sw.onHeader}
	return sw, sw.finish
}

type streamErrorWriter struct {
	respWriter
	f      *grpcStreamError
	frames grpcFrames
	done   bool // the response is ended: no byte more passes
	// trailers is set once the status is in the trailers.
	trailers bool
}

var _ ender = (*streamErrorWriter)(nil)

// onHeader replaces the status of an upstream's trailers-only answer when
// no message may pass at all.
func (w *streamErrorWriter) onHeader(h http.Header, _ int) {
	if w.f.after == 0 && h.Get("Grpc-Status") != "" {
		h.Set("Grpc-Status", strconv.Itoa(int(w.f.code)))
		h.Set("Grpc-Message", EncodeGRPCMessage(w.f.msg))
		h.Del("Grpc-Status-Details-Bin")
		h.Set(FaultHeader, "stream_error")
		w.done = true
	}
}

// Write passes bytes up to the end of the last message allowed through,
// then ends the response: it refuses the rest, so the reverse proxy stops
// copying and cancels the upstream's stream, and the Board ends the
// response with the trailers set here.
func (w *streamErrorWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errCut
	}
	w.header()
	n := w.frames.feed(p, w.f.after)
	if n > 0 {
		if m, err := w.ResponseWriter.Write(p[:n]); err != nil {
			return m, err
		}
	}
	if w.frames.msgs < w.f.after {
		return n, nil
	}
	w.end()
	return n, errCut
}

func (w *streamErrorWriter) end() {
	w.done, w.trailers = true, true
	w.setTrailers()
	w.flush()
}

func (w *streamErrorWriter) setTrailers() {
	setGRPCTrailers(w.Header(), w.f.code, w.f.msg)
	w.Header()[http.TrailerPrefix+FaultHeader] = []string{"stream_error"}
}

// finish sets the status again once the upstream's handler has returned:
// a handler that met the refused write and went on to write its own
// status (a gRPC server's) must not replace the fault's. It also ends a
// call the upstream finished without a message when none may pass.
func (w *streamErrorWriter) finish() {
	switch {
	case w.trailers:
		w.setTrailers()
	case !w.done && w.frames.msgs >= w.f.after:
		w.header()
		w.end()
	}
}

// ended implements ender.
func (w *streamErrorWriter) ended() bool { return w.done }
