package inject

import (
	"fmt"
	"net/http"
	"strconv"
)

// DefaultAbortStatus is the status an abort answers with when the scenario
// does not say.
const DefaultAbortStatus = http.StatusServiceUnavailable

// AbortSpec answers matching requests with an HTTP error instead of
// forwarding them, as a failing upstream would.
type AbortSpec struct {
	Match `yaml:",inline"`
	// Status is the HTTP status to answer with; default 503.
	Status int `yaml:"status"`
	// Body is the answer's body.
	Body string `yaml:"body"`
}

var _ HTTPSpec = (*AbortSpec)(nil)

// Kind implements Spec.
func (*AbortSpec) Kind() string { return "abort" }

// Check implements Spec.
func (s *AbortSpec) Check(problem func(field, msg string)) {
	s.Match.check(problem)
	if s.Status < 100 || s.Status > 599 {
		problem("status", fmt.Sprintf("%d is not an HTTP status (100..599)", s.Status))
	}
}

// Build implements HTTPSpec.
func (s *AbortSpec) Build() HTTPFault {
	body := s.Body
	if body == "" {
		body = fmt.Sprintf(`{"error":%q,"injected_by":"resctl"}`, http.StatusText(s.Status))
	}
	return &abort{status: s.Status, body: []byte(body), length: strconv.Itoa(len(body))}
}

type abort struct {
	status int
	body   []byte
	length string
}

// Inject answers the request with the configured status.
func (a *abort) Inject(w http.ResponseWriter, _ *http.Request) bool {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", a.length)
	h.Set(FaultHeader, "abort")
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
	return true
}
