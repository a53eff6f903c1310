package guard

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ChainSource gives the chain an outgoing call runs through, read afresh
// for each call: a *Chain is its own source, and a *File gives the chain
// it last loaded, so that a reload reaches the calls that follow it.
type ChainSource interface {
	Chain() *Chain
}

// Chain implements ChainSource.
func (c *Chain) Chain() *Chain { return c }

// Transport is an http.RoundTripper that runs a guard chain around every
// request an http.Client sends: the admission policies (breakers, limits)
// admit it, a retry sends it again, a timeout bounds it (and the reading
// of its body) and tells the upstream the time left in its header, a hedge
// races a second attempt, a fallback answers for a failure. The policies
// are the proxy's, with the same configuration, metrics and events.
//
// The rules of safe retries are the proxy's: only the retry's methods
// (the idempotent ones by default) are sent again, and only when the body
// can be replayed byte for byte — from Request.GetBody, which
// http.NewRequest sets for in-memory bodies, or read into memory up to
// max_body. A refused request fails with the *Rejection (errors.Is
// ErrOpen, ErrLimited or ErrShed); one whose timeout passed with a
// *TimeoutError. A fallback answers with its status, headers and body
// (last_good responses are served by the proxy only).
type Transport struct {
	base http.RoundTripper
	src  ChainSource
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport that sends requests through chain and
// then base; a nil base is http.DefaultTransport.
func NewTransport(base http.RoundTripper, chain ChainSource) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{base: base, src: chain}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	e := httpExchanges.Get().(*httpExchange)
	e.base, e.req = t.base, req
	e.call.req, e.call.ex = Request{Route: req.URL.Path, Method: req.Method, Header: req.Header}, e
	res := t.src.Chain().outgoing().run(req.Context(), &e.call)
	if !e.sentBody && req.Body != nil {
		req.Body.Close() // a RoundTripper closes the body, sent or not
	}
	e.reset()
	httpExchanges.Put(e)
	if res.err != nil {
		return nil, res.err
	}
	return res.ans.(*http.Response), nil
}

// httpExchange is one request of the Transport, with the state of its
// call through the chain, pooled together.
type httpExchange struct {
	call outCall
	base http.RoundTripper
	req  *http.Request
	// body is the request body read into memory to be replayed.
	body []byte
	// once is what is left of a body too large to replay, sent once.
	once io.ReadCloser
	// bodyChecked: repeatable has looked at the body; bodyOK: it can
	// be replayed.
	bodyChecked, bodyOK bool
	// sentBody: the caller's body went to base, or was closed here.
	sentBody bool
	sends    atomic.Int32
}

// httpExchanges pools the Transport's per-request state.
var httpExchanges = sync.Pool{New: func() any { return new(httpExchange) }}

func (e *httpExchange) reset() {
	e.call = outCall{}
	e.base, e.req, e.body, e.once = nil, nil, nil, nil
	e.bodyChecked, e.bodyOK, e.sentBody = false, false, false
	e.sends.Store(0)
}

var _ exchange = (*httpExchange)(nil)

func (e *httpExchange) send(ctx context.Context, x *outCall, n int) (any, Outcome, error) {
	first := e.sends.Add(1) == 1
	r := e.req
	stamp := x.stamp != nil && x.stamp.header != ""
	switch a, ok := ctx.(*attemptCtx); {
	case ok && a.src == e.req:
		// A timeout's attempt, whose copy of the request is made: the
		// first send under it takes that copy.
		r, a.src = &a.req, nil
	case ctx != r.Context() || x.attemptHeader != "" || x.idHeader != "" || stamp || !first || e.once != nil:
		r = e.req.WithContext(ctx)
	}
	if x.attemptHeader != "" || x.idHeader != "" || stamp {
		r.Header = e.req.Header.Clone()
		if r.Header == nil {
			r.Header = make(http.Header, 3)
		}
		if x.attemptHeader != "" {
			setAttempt(r.Header, http.CanonicalHeaderKey(x.attemptHeader), n)
		}
		if x.idHeader != "" && headerGet(r.Header, x.idHeader) == "" {
			r.Header[x.idHeader] = []string{x.id}
		}
		if dl, ok := ctx.Deadline(); ok && stamp {
			r.Header[x.stamp.header] = x.stamp.headerVals.get(max(1, time.Until(dl).Milliseconds()))
		}
	}
	switch b := e.req.Body; {
	case b == nil || b == http.NoBody:
	case e.body != nil:
		withBody(r, e.body)
	case e.once != nil:
		r.Body, e.once = e.once, nil
		e.sentBody = true
	case first:
		e.sentBody = true
	case e.req.GetBody != nil:
		nb, err := e.req.GetBody()
		if err != nil {
			return nil, Outcome{Err: err}, err
		}
		r.Body = nb
	}
	resp, err := e.base.RoundTrip(r)
	if err != nil {
		o := Outcome{Err: err}
		switch cerr := ctx.Err(); {
		case errors.Is(cerr, context.DeadlineExceeded):
			o.Timeout = true
		case cerr != nil:
			o.Err = context.Canceled
		}
		return nil, o, err
	}
	return resp, Outcome{Status: resp.StatusCode}, nil
}

// repeatable implements exchange: the method is one listed, and the body
// can be replayed — it is empty, GetBody makes it afresh, or it fits
// maxBody and is read into memory now.
func (e *httpExchange) repeatable(methods *methodSet, maxBody int64) bool {
	if !methods.has(e.req.Method) {
		return false
	}
	if e.bodyChecked {
		return e.bodyOK
	}
	e.bodyChecked = true
	r := e.req
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.GetBody != nil:
		e.bodyOK = true
	case r.ContentLength > maxBody:
	default:
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil || int64(len(b)) > maxBody {
			e.once = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
			return false
		}
		r.Body.Close()
		e.sentBody = true
		if b == nil {
			b = []byte{}
		}
		e.body, e.bodyOK = b, true
	}
	return e.bodyOK
}

func (e *httpExchange) retryAfter(ans any) string {
	if resp, ok := ans.(*http.Response); ok {
		return resp.Header.Get("Retry-After")
	}
	return ""
}

// maxDrain is how much of a discarded body is read so that its connection
// can be reused; a longer one closes the connection.
const maxDrain = 64 << 10

func (e *httpExchange) drop(ans any) {
	if resp, ok := ans.(*http.Response); ok {
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		resp.Body.Close()
	}
}

// timedAttempt is a timeout's attempt of a request and the response body
// it holds open (see heldBody), in one allocation: it is the body the
// caller reads.
type timedAttempt struct {
	a    attemptCtx
	body io.ReadCloser
}

func (t *timedAttempt) end() { t.a.cancel(context.Canceled) }

// Read ends the attempt at the end of the body; an attempt ends once, so
// ending it again does nothing.
func (t *timedAttempt) Read(p []byte) (int, error) {
	n, err := t.body.Read(p)
	if err == io.EOF {
		t.end()
	}
	return n, err
}

// Close ends the attempt.
func (t *timedAttempt) Close() error {
	err := t.body.Close()
	t.end()
	return err
}

// deadline implements exchange with the proxy's lazy attempt context,
// which carries its copy of the request, and the held body to come.
func (e *httpExchange) deadline(ctx context.Context, at int64) (context.Context, ender) {
	t := &timedAttempt{}
	t.a.parent, t.a.deadline, t.a.src = ctx, at, e.req
	t.a.req = *e.req.WithContext(&t.a)
	return &t.a, t
}

func (e *httpExchange) hold(ans any, end ender) {
	resp := ans.(*http.Response)
	if t, ok := end.(*timedAttempt); ok {
		t.body, resp.Body = resp.Body, t
		return
	}
	resp.Body = &heldBody{ReadCloser: resp.Body, end: end}
}

func (e *httpExchange) concurrent() bool { return true }

func (e *httpExchange) fallback(f *Fallback) (any, bool) {
	h := make(http.Header, len(f.cfg.Headers)+2)
	for k, v := range f.cfg.Headers {
		h.Set(k, v)
	}
	h.Set(FallbackHeader, f.stub)
	if f.cfg.ContentType != "" {
		h.Set("Content-Type", f.cfg.ContentType)
	}
	body := f.body
	if e.req.Method == http.MethodHead {
		body = nil
	}
	return &http.Response{
		Status:     strconv.Itoa(f.cfg.Status) + " " + http.StatusText(f.cfg.Status),
		StatusCode: f.cfg.Status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(f.body)),
		Request: e.req,
	}, true
}

// heldBody is a response body whose attempt's context lives until the
// caller has read it to the end or closed it.
type heldBody struct {
	io.ReadCloser
	end   ender
	ended atomic.Bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && b.ended.CompareAndSwap(false, true) {
		b.end.end()
	}
	return n, err
}

func (b *heldBody) Close() error {
	err := b.ReadCloser.Close()
	if b.ended.CompareAndSwap(false, true) {
		b.end.end()
	}
	return err
}
