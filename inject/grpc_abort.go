package inject

import (
	"io"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
)

// GRPCAbortSpec fails matching gRPC calls with a status instead of
// forwarding them, as a server that rejects the call outright would: a
// trailers-only response, so the client sees the code and message and no
// message body. The upstream never sees the call.
type GRPCAbortSpec struct {
	GRPCMatch `yaml:",inline"`
	// Code is the status, by name or number; DefaultGRPCCode (UNAVAILABLE)
	// when unset.
	Code GRPCCode `yaml:"code"`
	// Message is the status message; "injected by resctl" when empty.
	Message string `yaml:"message"`
}

var _ HTTPSpec = (*GRPCAbortSpec)(nil)

// Kind implements Spec.
func (*GRPCAbortSpec) Kind() string { return "abort" }

// Check implements Spec.
func (s *GRPCAbortSpec) Check(problem func(field, msg string)) {
	s.GRPCMatch.check(problem)
	s.Code.checkError("code", problem)
}

// Build implements HTTPSpec.
func (s *GRPCAbortSpec) Build() HTTPFault {
	msg := s.Message
	if msg == "" {
		msg = defaultGRPCMessage
	}
	return &grpcAbort{code: codes.Code(s.Code), msg: msg}
}

// maxDrain bounds what an abort reads of a request before answering.
const maxDrain = 1 << 20

type grpcAbort struct {
	code codes.Code
	msg  string
}

// Inject answers the call with the configured status.
// drainWait bounds how long an abort waits for the rest of the request.
const drainWait = 5 * time.Millisecond

func (a *grpcAbort) Inject(w http.ResponseWriter, r *http.Request) bool {
	// Take in the request first, as a server answers a unary call only
	// once it has read it: a status sent while the client is still
	// sending races its end of the stream, and some clients (grpc-go's
	// load-balancing statistics among them) then see the call end without
	// its status. A unary request has arrived already; a stream still
	// open is cut off after drainWait.
	if r.Body != nil {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(drainWait))
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	w.Header().Set(FaultHeader, "abort")
	WriteGRPCStatus(w, a.code, a.msg)
	return true
}
