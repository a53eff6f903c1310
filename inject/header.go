package inject

import (
	"net/http"
	"strings"
)

// Sides of an exchange a header fault edits.
const (
	SideRequest  = "request"
	SideResponse = "response"
)

// HeaderSpec adds, replaces or removes headers of matching requests (before
// they are forwarded) or of their responses: a proxy that strips auth, a
// CDN that drops Cache-Control, a gateway that adds a conflicting header.
type HeaderSpec struct {
	Match `yaml:",inline"`
	// Side is request or response (the default).
	Side string `yaml:"side"`
	// Set adds headers, replacing any of the same name.
	Set map[string]string `yaml:"set"`
	// Remove deletes headers by name.
	Remove []string `yaml:"remove"`
}

var _ HTTPSpec = (*HeaderSpec)(nil)

// Kind implements Spec.
func (*HeaderSpec) Kind() string { return "header" }

// Check implements Spec.
func (s *HeaderSpec) Check(problem func(field, msg string)) {
	s.Match.check(problem)
	s.checkEdit(problem)
}

// checkEdit checks what the HTTP header and gRPC metadata faults share.
func (s *HeaderSpec) checkEdit(problem func(field, msg string)) {
	if s.Side != SideRequest && s.Side != SideResponse {
		problem("side", "must be request or response")
	}
	if len(s.Set) == 0 && len(s.Remove) == 0 {
		problem("set", "set or remove at least one header")
	}
	for name := range s.Set {
		if !validHeaderName(name) {
			problem("set", name+" is not a header name")
		}
	}
	for _, name := range s.Remove {
		if !validHeaderName(name) {
			problem("remove", name+" is not a header name")
		}
	}
}

func validHeaderName(s string) bool { return s != "" && !strings.ContainsAny(s, " :\t\r\n") }

// Build implements HTTPSpec.
func (s *HeaderSpec) Build() HTTPFault {
	return &header{request: s.Side == SideRequest, set: s.Set, remove: s.Remove}
}

type header struct {
	request bool
	set     map[string]string
	remove  []string
}

var _ ResponseFault = (*header)(nil)

func (f *header) edit(h http.Header) {
	for _, name := range f.remove {
		h.Del(name)
	}
	for name, v := range f.set {
		h.Set(name, v)
	}
}

// Inject edits the request's headers when the fault is on the request side.
func (f *header) Inject(_ http.ResponseWriter, r *http.Request) bool {
	if f.request {
		f.edit(r.Header)
	}
	return false
}

// WrapResponse edits the response's headers as they are written.
func (f *header) WrapResponse(w http.ResponseWriter, _ *http.Request) (http.ResponseWriter, func()) {
	if f.request {
		return w, func() {}
	}
	return &headerWriter{respWriter{ResponseWriter: w, onHeader: func(h http.Header, _ int) { f.edit(h) }}}, func() {}
}

type headerWriter struct{ respWriter }

func (w *headerWriter) Write(p []byte) (int, error) {
	w.header()
	return w.ResponseWriter.Write(p)
}
