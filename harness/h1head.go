package harness

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Reading a client's request head for h1Server: the request line and the
// header fields, parsed from the bytes the connection buffered, into an
// *http.Request as net/http's server fills it for the handlers.

// headError is a request head the server refuses, with the status it
// answers before closing the connection.
type headError struct {
	code int
	msg  string
}

func (e *headError) Error() string { return e.msg }

func badHead(msg string) error { return &headError{http.StatusBadRequest, msg} }

// headEnd is the length of the head at the start of b, through the empty
// line that ends it (CRLF or a bare LF, as net/textproto reads lines), or
// -1 while it is incomplete. from is where an earlier look stopped, so a
// head arriving in pieces is scanned once.
func headEnd(b []byte, from int) int {
	for i := max(from, 0); i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
	return -1
}

// headScanFrom is where headEnd should start again after looking at n
// bytes in vain: the last line end might be cut between two reads.
func headScanFrom(n int) int { return max(n-3, 0) }

// parsedHead is a request head as parsed, before it becomes a request.
type parsedHead struct {
	method, target string
	minor          int
	header         http.Header
}

// parseHead parses a whole head (as headEnd delimits it), all its strings
// sharing one allocation. At most maxFields header fields are taken; more
// is a 431, as a head over the byte limit is.
func parseHead(head []byte, maxFields int) (parsedHead, error) {
	var h parsedHead
	s := string(head)
	line, rest := nextLine(s)
	method, rest1, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest1, " ")
	if !ok1 || !ok2 {
		return h, badHead("malformed request line")
	}
	if !validMethod(method) {
		return h, badHead("invalid method")
	}
	if target == "" {
		return h, badHead("empty request target")
	}
	switch proto {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
	default:
		major, minor, ok := http.ParseHTTPVersion(proto)
		if !ok {
			return h, badHead("malformed HTTP version")
		}
		if major != 1 {
			return h, &headError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
		}
		h.minor = min(minor, 1)
	}
	h.method, h.target = method, target

	n := strings.Count(rest, "\n") // an upper bound on the fields
	if n > maxFields+1 {
		return h, &headError{http.StatusRequestHeaderFieldsTooLarge, "too many header fields"}
	}
	h.header = make(http.Header, n)
	vals := make([]string, n) // one allocation for the values
	for {
		line, rest = nextLine(rest)
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// Obsolete line folding: RFC 9112 lets a server refuse it.
			return h, badHead("folded header line")
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" {
			return h, badHead("malformed header line")
		}
		if !validFieldName(k) {
			return h, badHead("invalid header field name")
		}
		v = strings.Trim(v, " \t")
		if !validFieldValue(v) {
			return h, badHead("invalid header field value")
		}
		if !isCanonical(k) {
			k = http.CanonicalHeaderKey(k)
		}
		if old, ok := h.header[k]; ok {
			h.header[k] = append(old, v)
		} else {
			vals[0] = v
			h.header[k] = vals[:1:1]
			vals = vals[1:]
		}
	}
	return h, nil
}

// nextLine splits off s's first line, without its line end.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	return strings.TrimSuffix(line, "\r"), rest
}

func validMethod(m string) bool { return m != "" && validFieldName(m) }

// validFieldName reports whether s is a token (RFC 9110, 5.6.2).
func validFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// validFieldValue refuses control characters but the tab, as
// net/textproto does.
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isCanonical reports whether a token is already in the form
// http.CanonicalHeaderKey gives it, which most clients send: the key is
// then used as it came, with no allocation.
func isCanonical(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// newRequest makes the request a parsed head describes, as net/http's
// server does: the URL and Host, the body's framing, whether the
// connection closes after it. The body is left to the caller.
func newRequest(ctx context.Context, h parsedHead) (*http.Request, error) {
	r := emptyRequest.WithContext(ctx)
	r.Method, r.RequestURI, r.Header = h.method, h.target, h.header
	r.ProtoMajor, r.ProtoMinor = 1, h.minor
	r.Proto = [2]string{"HTTP/1.0", "HTTP/1.1"}[h.minor]

	raw := h.target
	authority := h.method == http.MethodConnect && !strings.HasPrefix(raw, "/")
	if authority {
		raw = "http://" + raw
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return nil, badHead("malformed request target")
	}
	if authority {
		u.Scheme = ""
	}
	r.URL = u

	hosts, haveHost := h.header["Host"]
	switch {
	case len(hosts) > 1:
		return nil, badHead("too many Host headers")
	case h.minor == 1 && !haveHost && h.method != http.MethodConnect:
		return nil, badHead("missing required Host header")
	case haveHost && !httpguts.ValidHostHeader(hosts[0]):
		return nil, badHead("malformed Host header")
	}
	r.Host = u.Host
	if r.Host == "" && haveHost {
		r.Host = hosts[0]
	}
	delete(h.header, "Host")
	if pragma, ok := h.header["Pragma"]; ok && len(pragma) > 0 && pragma[0] == "no-cache" {
		if _, ok := h.header["Cache-Control"]; !ok {
			h.header["Cache-Control"] = []string{"no-cache"}
		}
	}

	conn := h.header["Connection"]
	if h.minor == 0 {
		r.Close = !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	} else {
		r.Close = httpguts.HeaderValuesContainsToken(conn, "close")
	}

	if te, ok := h.header["Transfer-Encoding"]; ok {
		switch {
		case h.minor == 0:
			return nil, badHead("Transfer-Encoding in an HTTP/1.0 request")
		case len(te) != 1 || !strings.EqualFold(te[0], "chunked"):
			return nil, &headError{http.StatusNotImplemented, "unsupported transfer encoding"}
		}
		delete(h.header, "Transfer-Encoding")
		delete(h.header, "Content-Length")
		r.TransferEncoding = []string{"chunked"}
		r.ContentLength = -1
		if tr, ok := h.header["Trailer"]; ok {
			delete(h.header, "Trailer")
			r.Trailer = http.Header{}
			for _, v := range tr {
				for k := range strings.SplitSeq(v, ",") {
					k = http.CanonicalHeaderKey(strings.Trim(k, " \t"))
					switch k {
					case "":
						continue
					case "Transfer-Encoding", "Trailer", "Content-Length":
						return nil, badHead("bad trailer key")
					}
					r.Trailer[k] = nil
				}
			}
		}
		return r, nil
	}
	if cl, ok := h.header["Content-Length"]; ok {
		for _, v := range cl[1:] {
			if v != cl[0] {
				return nil, badHead("multiple Content-Length headers")
			}
		}
		n, ok := parseLength(cl[0])
		if !ok {
			return nil, badHead("bad Content-Length")
		}
		if len(cl) > 1 {
			h.header["Content-Length"] = cl[:1]
		}
		r.ContentLength = n
	}
	return r, nil
}

// emptyRequest is what each request is copied from: Request.WithContext
// is the one way to make a request with a context of the server's own
// without parsing a URL again.
var emptyRequest http.Request
