package inject

import (
	"errors"
	"net/http"
)

// errCut is what a response fault's writer answers once it has ended the
// response, so the upstream's copy stops.
var errCut = errors.New("response cut by a fault")

// ender is implemented by the writers of response faults that end a
// response on purpose while the upstream is still sending (a gRPC error
// after N messages). The writer refuses the rest of the body; the reverse
// proxy answers a refused write by aborting the handler with
// http.ErrAbortHandler, and the Board absorbs that abort when one of its
// writers ended the response, so the response ends as the fault wrote it
// instead of being reset.
type ender interface{ ended() bool }

// respWriter is the base of the writers response faults put in front of the
// upstream's response: it makes sure the header hook runs once, before the
// first byte, whether the handler calls WriteHeader or only Write, and lets
// http.ResponseController reach the real writer's Flush and Hijack.
type respWriter struct {
	http.ResponseWriter
	onHeader    func(h http.Header, code int) // may be nil
	wroteHeader bool
}

func (w *respWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	informational := code >= 100 && code < 200 && code != http.StatusSwitchingProtocols
	if !informational {
		w.wroteHeader = true
		if w.onHeader != nil {
			w.onHeader(w.Header(), code)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) header() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
}

func (w *respWriter) flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Flush passes a flush on; the reverse proxy flushes after every write.
func (w *respWriter) Flush() { w.header(); w.flush() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// abortConnection ends a response abruptly, as a crashing server or a
// middlebox would: over HTTP/1 it resets the TCP connection (RST), over
// HTTP/2 it resets the stream. When the client has already gone there is
// nothing left to reset.
func abortConnection(w http.ResponseWriter, r *http.Request) {
	if r.Context().Err() != nil {
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	conn, buf, err := rc.Hijack()
	if err != nil {
		// HTTP/2, or a writer that cannot hand over its connection: the
		// server resets the stream for this panic and logs nothing.
		panic(http.ErrAbortHandler)
	}
	_ = buf.Flush()
	// Close with RST, not FIN: a *net.TCPConn, or a server's wrapper of
	// one that forwards SetLinger.
	if lc, ok := conn.(interface{ SetLinger(sec int) error }); ok {
		_ = lc.SetLinger(0)
	}
	_ = conn.Close()
}
