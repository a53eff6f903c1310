package harness

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"reflect"
	"testing"
)

// FuzzParseHead throws arbitrary bytes at the request head parser of the
// http proxy's server: it must not panic; where a head ends must not
// depend on how its bytes arrived; and a head it takes, net/http must
// take too, and read alike (the server is stricter than net/http, never
// laxer). One reading differs on purpose: a request of a later HTTP/1
// minor version is served as 1.1, the highest this server speaks (RFC
// 9110 section 2.5), where net/http keeps the number it read.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a?b=c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, X-Other\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"OPTIONS * HTTP/1.9\r\nHost: x\r\n\r\n",
		"GET http://example.com/x HTTP/1.1\r\nhost: y\r\nuser-agent: z\r\nPragma: no-cache\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\nX-A:  b \t\n\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end := headEnd(b, 0)
		for cut := 1; cut < len(b) && cut < 64; cut++ {
			got := headEnd(b[:cut], 0)
			if got < 0 {
				got = headEnd(b, headScanFrom(cut))
			}
			if got != end {
				t.Fatalf("head of %q ends at %d, or at %d when its first %d bytes came alone", b, end, got, cut)
			}
		}
		if end < 0 {
			return
		}
		h, err := parseHead(b[:end], 100)
		if err != nil {
			return
		}
		r, err := newRequest(context.Background(), h)
		if err != nil {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:end])))
		if err != nil {
			t.Fatalf("took %q, which net/http refuses: %v", b[:end], err)
		}
		want.ProtoMinor = min(want.ProtoMinor, 1)
		if r.Method != want.Method || r.RequestURI != want.RequestURI || r.URL.String() != want.URL.String() ||
			r.Host != want.Host || r.ProtoMinor != want.ProtoMinor || r.Close != want.Close ||
			r.ContentLength != want.ContentLength || !reflect.DeepEqual(r.TransferEncoding, want.TransferEncoding) {
			t.Fatalf("%q read as %s %s %s host %q 1.%d close %v length %d %v; net/http: %s %s %s host %q 1.%d close %v length %d %v",
				b[:end], r.Method, r.RequestURI, r.URL, r.Host, r.ProtoMinor, r.Close, r.ContentLength, r.TransferEncoding,
				want.Method, want.RequestURI, want.URL, want.Host, want.ProtoMinor, want.Close, want.ContentLength, want.TransferEncoding)
		}
		if !reflect.DeepEqual(r.Header, want.Header) {
			t.Fatalf("%q: header %q; net/http: %q", b[:end], r.Header, want.Header)
		}
		if len(r.Trailer) > 0 && !reflect.DeepEqual(r.Trailer, want.Trailer) {
			t.Fatalf("%q: trailer %q; net/http: %q", b[:end], r.Trailer, want.Trailer)
		}
	})
}
