package inject

import (
	"net/http"

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

type grpcAbort struct {
	code codes.Code
	msg  string
}

// Inject answers the call with the configured status.
func (a *grpcAbort) Inject(w http.ResponseWriter, _ *http.Request) bool {
	w.Header().Set(FaultHeader, "abort")
	WriteGRPCStatus(w, a.code, a.msg)
	return true
}
