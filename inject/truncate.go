package inject

import (
	"net/http"

	"github.com/resctl/resctl/quantity"
)

// TruncateSpec cuts the body of matching responses after Bytes bytes and
// ends the response cleanly there, without a Content-Length: the client
// receives a well-formed HTTP response whose payload is short, the way a
// buggy or overloaded upstream sends half a JSON document.
type TruncateSpec struct {
	Match `yaml:",inline"`
	// Bytes is how much of the body is sent before it ends.
	Bytes quantity.Bytes `yaml:"bytes"`
}

var _ HTTPSpec = (*TruncateSpec)(nil)

// Kind implements Spec.
func (*TruncateSpec) Kind() string { return "truncate" }

// Check implements Spec.
func (s *TruncateSpec) Check(problem func(field, msg string)) {
	s.Match.check(problem)
	if s.Bytes < 0 {
		problem("bytes", "must not be negative")
	}
}

// Build implements HTTPSpec.
func (s *TruncateSpec) Build() HTTPFault { return &truncate{keep: int64(s.Bytes)} }

type truncate struct{ keep int64 }

var _ ResponseFault = (*truncate)(nil)

// Inject lets the request through; the response is cut.
func (*truncate) Inject(http.ResponseWriter, *http.Request) bool { return false }

// WrapResponse keeps the first bytes of the body.
func (f *truncate) WrapResponse(w http.ResponseWriter, _ *http.Request) (http.ResponseWriter, func()) {
	tw := &truncWriter{left: f.keep}
	tw.respWriter = respWriter{ResponseWriter: w, onHeader: func(h http.Header, _ int) { h.Del("Content-Length") }}
	return tw, func() {}
}

type truncWriter struct {
	respWriter
	left int64
}

// Write passes what fits and swallows the rest, so the upstream's copy
// completes and the response ends normally.
func (w *truncWriter) Write(p []byte) (int, error) {
	w.header()
	if w.left <= 0 {
		return len(p), nil
	}
	keep := p[:min(int64(len(p)), w.left)]
	n, err := w.ResponseWriter.Write(keep)
	w.left -= int64(n)
	if err != nil {
		return n, err
	}
	return len(p), nil
}
