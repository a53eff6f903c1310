package guard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/internal/demo/demopb"
)

// chainOf builds a chain from YAML, as a service's guard file writes it.
func chainOf(t *testing.T, yaml string, o guard.Options) *guard.Chain {
	t.Helper()
	specs, err := guard.Parse([]byte(yaml), "client")
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	c, err := guard.NewBuilder(o).Build(specs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clientRequest is a request the outgoing conformance checks send.
type clientRequest struct {
	method, path, body string
}

var clientRequests = []clientRequest{
	{"GET", "/api/orders?id=7", ""},
	{"POST", "/api/orders", `{"item":1}`},
	{"PUT", "/api/orders/7", `{"item":2}`},
	{"GET", "/missing", ""},
	{"GET", "/fail", ""},
	{"HEAD", "/api/orders", ""},
}

// roundTrip sends r with client and returns the response as bytes.
func roundTrip(t *testing.T, client *http.Client, base string, r clientRequest) []byte {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := httputil.DumpResponse(resp, true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// h2cServer serves h over cleartext HTTP/2 only, and returns its URL and a
// client that speaks it.
func h2cServer(t *testing.T, h http.Handler) (string, *http.Transport) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return "http://" + ln.Addr().String(), tr
}

// TestConformance_Outgoing runs every policy kind through the outgoing
// paths — the Transport over HTTP/1.1 and h2c, the gRPC client
// interceptors — as TestConformance runs them through the middleware:
// configured never to reject, a chain changes no request and no response;
// a cancelled caller returns at once; nothing is left running.
func TestConformance_Outgoing(t *testing.T) {
	for _, kind := range guard.Kinds() {
		t.Run(kind, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
			chain := func(n int) *guard.Chain {
				ps := make([]guard.Policy, n)
				for i := range ps {
					ps[i] = conformingPolicy(t, kind)
				}
				return guard.NewChain(ps...)
			}

			t.Run("transport changes no exchange", func(t *testing.T) {
				plain := httptest.NewServer(upstream{})
				defer plain.Close()
				h2URL, h2 := h2cServer(t, upstream{})
				for _, proto := range []struct {
					name string
					base string
					tr   http.RoundTripper
				}{
					{"http/1.1", plain.URL, plain.Client().Transport},
					{"h2c", h2URL, h2},
				} {
					for _, n := range []int{1, 2} {
						guarded := &http.Client{Transport: guard.NewTransport(proto.tr, chain(n))}
						for range 2 {
							for _, r := range clientRequests {
								want := roundTrip(t, &http.Client{Transport: proto.tr}, proto.base, r)
								got := roundTrip(t, guarded, proto.base, r)
								if !bytes.Equal(got, want) {
									t.Errorf("%s %d× %s: %s %s changed:\n got %q\nwant %q", proto.name, n, kind, r.method, r.path, got, want)
								}
							}
						}
					}
				}
			})

			t.Run("client interceptors change no call", func(t *testing.T) {
				svc := &orders{}
				addr := serveOrders(t, svc)
				plain := ordersClient(t, addr)
				c := chain(2)
				guarded := ordersClient(t, addr, grpc.WithUnaryInterceptor(guard.UnaryClientInterceptor(c)),
					grpc.WithStreamInterceptor(guard.StreamClientInterceptor(c)))
				for _, mode := range []int32{ordersUp, ordersDown, ordersBreaking} {
					svc.mode.Store(mode)
					want, wantErr := plain.GetOrder(context.Background(), &demopb.GetOrderRequest{Id: 3})
					got, err := guarded.GetOrder(context.Background(), &demopb.GetOrderRequest{Id: 3})
					if !proto.Equal(got, want) || status.Code(err) != status.Code(wantErr) {
						t.Errorf("mode %d: GetOrder = %v, %v; want %v, %v", mode, got, err, want, wantErr)
					}
					wantList, wantErr := listAll(plain)
					gotList, err := listAll(guarded)
					if fmt.Sprint(gotList) != fmt.Sprint(wantList) || status.Code(err) != status.Code(wantErr) {
						t.Errorf("mode %d: ListOrders = %v, %v; want %v, %v", mode, gotList, err, wantList, wantErr)
					}
				}
				if f, ok := c.Policies()[0].(interface{ InFlight() int64 }); ok && f.InFlight() != 0 {
					t.Errorf("%d calls in flight after all ended", f.InFlight())
				}
			})

			t.Run("a cancelled caller returns at once", func(t *testing.T) {
				srv := httptest.NewServer(upstream{})
				defer srv.Close()
				client := &http.Client{Transport: guard.NewTransport(srv.Client().Transport, chain(1))}
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api", nil)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.Header.Get(guard.FallbackHeader) == "" {
						t.Errorf("a cancelled request got %s", resp.Status)
					}
				}
			})
		})
	}
}

// serveOrders serves svc over gRPC on loopback until the test ends.
func serveOrders(t *testing.T, svc demopb.OrdersServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	demopb.RegisterOrdersServer(gs, svc)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

func ordersClient(t *testing.T, addr string, opts ...grpc.DialOption) demopb.OrdersClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return demopb.NewOrdersClient(conn)
}

func listAll(c demopb.OrdersClient) ([]string, error) {
	stream, err := c.ListOrders(context.Background(), &demopb.ListOrdersRequest{})
	if err != nil {
		return nil, err
	}
	var got []string
	for {
		o, err := stream.Recv()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, o.String())
	}
}

// recorder is an upstream that answers from a script, one status per
// attempt (then 200), and records what each attempt carried.
type recorder struct {
	mu       sync.Mutex
	script   []int
	header   http.Header // set on every answer
	attempts []http.Header
	bodies   []string
}

func (u *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	n := len(u.attempts)
	u.attempts = append(u.attempts, r.Header.Clone())
	u.bodies = append(u.bodies, string(b))
	code := http.StatusOK
	if n < len(u.script) {
		code = u.script[n]
	}
	u.mu.Unlock()
	for k, v := range u.header {
		w.Header()[k] = v
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "attempt %d", n+1)
}

func (u *recorder) seen() ([]http.Header, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.attempts, u.bodies
}

// fastRetry is a retry that waits a millisecond or two; extra adds keys.
func fastRetry(extra string) string {
	return "- retry: {attempts: 3, backoff: {base: 1ms, max: 2ms}, budget: {ratio: 100%, min_per_second: 100}" + extra + "}\n"
}

// TestTransport_RetrySafety checks the rules of safe retries: idempotent
// methods only unless listed, bodies replayed byte for byte (from GetBody
// or read into memory), bodies over max_body sent once, Retry-After
// beyond max_elapsed not waited for, and each attempt numbered under one
// request id.
func TestTransport_RetrySafety(t *testing.T) {
	body := strings.Repeat("orders;", 100)
	tests := []struct {
		name   string
		extra  string // more retry keys
		method string
		body   func() io.Reader
		script []int
		header http.Header
		want   int // attempts the upstream sees
		status int
		once   bool // passed through unretryable: no attempt headers
	}{
		{"GET retried until it succeeds", "", "GET", nil, []int{503, 502}, nil, 3, 200, false},
		{"GET gives up after its attempts", "", "GET", nil, []int{503, 503, 503, 503}, nil, 3, 503, false},
		{"a 500 is not retried", "", "GET", nil, []int{500}, nil, 1, 500, false},
		{"POST never retried by default", "", "POST", func() io.Reader { return strings.NewReader(body) }, []int{503}, nil, 1, 503, true},
		{"POST retried when listed, body from GetBody", ", methods: [POST]", "POST", func() io.Reader { return strings.NewReader(body) }, []int{503, 503}, nil, 3, 200, false},
		{"a body without GetBody is read and replayed", ", methods: [PUT]", "PUT", func() io.Reader { return io.MultiReader(strings.NewReader(body)) }, []int{503}, nil, 2, 200, false},
		{"a body over max_body is sent once", ", max_body: 100", "PUT", func() io.Reader { return io.MultiReader(strings.NewReader(body)) }, []int{503}, nil, 1, 503, true},
		{"Retry-After beyond max_elapsed is not waited for", ", max_elapsed: 2s", "GET", nil, []int{429}, http.Header{"Retry-After": {"10"}}, 1, 429, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &recorder{script: tt.script, header: tt.header}
			srv := httptest.NewServer(up)
			defer srv.Close()
			chain := chainOf(t, fastRetry(tt.extra), guard.Options{Seed: 1})
			client := &http.Client{Transport: guard.NewTransport(srv.Client().Transport, chain)}
			var rb io.Reader
			if tt.body != nil {
				rb = tt.body()
			}
			req, _ := http.NewRequest(tt.method, srv.URL+"/api/orders", rb)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			attempts, bodies := up.seen()
			if resp.StatusCode != tt.status || len(attempts) != tt.want {
				t.Fatalf("status %d after %d attempts (%q); want %d after %d", resp.StatusCode, len(attempts), got, tt.status, tt.want)
			}
			if want := fmt.Sprintf("attempt %d", tt.want); string(got) != want {
				t.Errorf("body %q, want the last attempt's %q", got, want)
			}
			id := attempts[0].Get(guard.RequestIDHeader)
			for i, h := range attempts {
				if tt.once {
					if h.Get(guard.AttemptHeader) != "" {
						t.Errorf("a request sent once was numbered %q", h.Get(guard.AttemptHeader))
					}
				} else if h.Get(guard.AttemptHeader) != strconv.Itoa(i+1) || h.Get(guard.RequestIDHeader) != id || id == "" {
					t.Errorf("attempt %d carried %s=%q %s=%q, want %d under one id", i+1, guard.AttemptHeader, h.Get(guard.AttemptHeader), guard.RequestIDHeader, h.Get(guard.RequestIDHeader), i+1)
				}
				if tt.body != nil && bodies[i] != body {
					t.Errorf("attempt %d sent a body of %d bytes, want the %d sent", i+1, len(bodies[i]), len(body))
				}
			}
		})
	}
}

// TestTransport_BreakerAndFallback opens a breaker in a client and reads
// its refusals, then lets a fallback answer them.
func TestTransport_BreakerAndFallback(t *testing.T) {
	up := &recorder{script: []int{500, 500, 500, 500, 500, 500}}
	srv := httptest.NewServer(up)
	defer srv.Close()
	const breaker = `
- breaker: {consecutive_failures: 3, failure_rate: 0, open_for: 1m}
`
	tests := []struct {
		name, yaml string
		check      func(t *testing.T, resp *http.Response, err error)
	}{
		{"refused while open", breaker, func(t *testing.T, resp *http.Response, err error) {
			var rej *guard.Rejection
			if !errors.Is(err, guard.ErrOpen) || !errors.As(err, &rej) || rej.Policy != "client" {
				t.Errorf("err = %v, want a rejection by the breaker", err)
			}
		}},
		{"answered by the fallback", breaker + `- fallback: {status: 200, body: '{"orders":[]}', headers: {X-Stale: "1"}}`, func(t *testing.T, resp *http.Response, err error) {
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != `{"orders":[]}` || resp.Header.Get(guard.FallbackHeader) != guard.FallbackStatic || resp.Header.Get("X-Stale") != "1" {
				t.Errorf("got %d %q %v, want the fallback's stub", resp.StatusCode, b, resp.Header)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up.mu.Lock()
			up.attempts = nil
			up.mu.Unlock()
			client := &http.Client{Transport: guard.NewTransport(srv.Client().Transport, chainOf(t, tt.yaml, guard.Options{}))}
			for range 3 {
				resp, err := client.Get(srv.URL + "/api")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			resp, err := client.Get(srv.URL + "/api")
			tt.check(t, resp, err)
			if attempts, _ := up.seen(); len(attempts) != 3 {
				t.Errorf("upstream saw %d requests, want 3: the breaker sent none once open", len(attempts))
			}
		})
	}
}

// TestTransport_Timeout checks that a timeout cuts a request the upstream
// holds, tells the upstream the time left, and keeps its deadline, not
// less, for reading a body after RoundTrip returns.
func TestTransport_Timeout(t *testing.T) {
	held := make(chan string, 1)
	big := bytes.Repeat([]byte("x"), 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		held <- r.Header.Get(guard.DeadlineHeader)
		<-r.Context().Done()
	}))
	defer srv.Close()
	chain := chainOf(t, "- timeout: 200ms\n", guard.Options{})
	client := &http.Client{Transport: guard.NewTransport(srv.Client().Transport, chain)}

	_, err := client.Get(srv.URL + "/held")
	var te *guard.TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) || te.Policy != "client" {
		t.Errorf("err = %v, want the timeout's", err)
	}
	if ms, err := strconv.Atoi(<-held); err != nil || ms < 1 || ms > 200 {
		t.Errorf("the upstream was told %d ms (%v), want 1..200", ms, err)
	}

	// A body read after RoundTrip returned is still within the deadline:
	// a minute, so that a busy machine reads the megabyte in time and
	// only a deadline cut short when RoundTrip returns fails the read.
	long := chainOf(t, "- timeout: 1m\n", guard.Options{})
	client = &http.Client{Transport: guard.NewTransport(srv.Client().Transport, long)}
	resp, err := client.Get(srv.URL + "/big")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(b) != len(big) {
		t.Errorf("read %d of %d bytes: %v", len(b), len(big), err)
	}
}

// rtFunc is a RoundTripper made of a function.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A timeout right inside a retry takes its deadline from the time the
// retry began; a later attempt, after the retry's wait, from its own
// start. Each deadline lies between After past the moment before the
// attempt could begin (for the second: once the first was sent) and
// After past the moment it was sent.
func TestTransport_RetryTimeoutDeadlines(t *testing.T) {
	chain := chainOf(t, "- retry: {attempts: 2, backoff: {base: 5ms, max: 5ms}, budget: {ratio: 100%}}\n- timeout: 300ms\n", guard.Options{})
	type sent struct{ at, deadline time.Time }
	var attempts []sent
	client := &http.Client{Transport: guard.NewTransport(rtFunc(func(r *http.Request) (*http.Response, error) {
		dl, ok := r.Context().Deadline()
		if !ok {
			t.Fatal("an attempt without a deadline")
		}
		attempts = append(attempts, sent{time.Now(), dl})
		status := http.StatusServiceUnavailable
		if len(attempts) == 2 {
			status = http.StatusOK
		}
		return &http.Response{StatusCode: status, Body: http.NoBody, Request: r}, nil
	}), chain)}
	before := time.Now()
	resp, err := client.Get("http://payments.internal/pay")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(attempts) != 2 {
		t.Fatalf("%d attempts, want 2", len(attempts))
	}
	from := before
	for i, a := range attempts {
		lo, hi := from.Add(300*time.Millisecond), a.at.Add(300*time.Millisecond)
		if a.deadline.Before(lo) || a.deadline.After(hi) {
			t.Errorf("attempt %d: deadline %v after the start, want %v..%v", i+1, a.deadline.Sub(before), lo.Sub(before), hi.Sub(before))
		}
		from = a.at // the next attempt begins after this one was sent
	}
}

// TestTransport_Hedge races a second attempt against a first the upstream
// holds: the second answers. (The first is cancelled; the leak checks
// see that nothing of it is left.)
func TestTransport_Hedge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// By the attempt's number, not by arrival: the second attempt
		// may reach the server first (and the first, cancelled, never).
		if r.Header.Get(guard.AttemptHeader) == "1" {
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, "second")
	}))
	defer srv.Close()
	chain := chainOf(t, "- hedge: {delay: 1ms, quantile: 0, budget: 100%}\n", guard.Options{})
	client := &http.Client{Transport: guard.NewTransport(srv.Client().Transport, chain)}
	resp, err := client.Get(srv.URL + "/api")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := chain.Policies()[0].(*guard.Hedge).HedgeStats()
	if string(b) != "second" || s.Sent != 1 || s.Won != 1 {
		t.Errorf("got %q with %+v, want the second attempt's answer", b, s)
	}
}

// errNotFound stands for a database's "no rows": the caller's answer, not
// the store failing.
var errNotFound = errors.New("not found")

// TestCaller_Do checks the wrapper of any call: a classifier decides what
// fails, a retry retries it, a breaker refuses, a timeout's deadline is
// the call's.
func TestCaller_Do(t *testing.T) {
	classify := func(err error) guard.Outcome {
		if errors.Is(err, errNotFound) {
			return guard.Outcome{}
		}
		return guard.ClassifyError(err)
	}
	errDown := errors.New("connection refused")
	tests := []struct {
		name    string
		yaml    string
		results []error // the function's, call by call
		calls   int     // Do calls made
		want    error
		fnCalls int
	}{
		{"a retry retries failures", fastRetry(""), []error{errDown, errDown, nil}, 1, nil, 3},
		{"a classified success is not retried", fastRetry(""), []error{errNotFound}, 1, errNotFound, 1},
		{"a breaker opens on failures", "- breaker: {consecutive_failures: 2, failure_rate: 0}\n", []error{errDown, errDown}, 3, guard.ErrOpen, 2},
		{"classified successes keep it closed", "- breaker: {consecutive_failures: 2, failure_rate: 0}\n", []error{errNotFound, errNotFound, errNotFound}, 3, errNotFound, 3},
		{"a timeout is the call's deadline", "- timeout: 20ms\n", []error{context.DeadlineExceeded}, 1, guard.ErrTimeout, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &guard.Caller{Chain: chainOf(t, tt.yaml, guard.Options{Seed: 1}), Route: "db.orders", Classify: classify}
			var n int
			var err error
			for range tt.calls {
				err = c.Do(context.Background(), func(ctx context.Context) error {
					r := tt.results[min(n, len(tt.results)-1)]
					n++
					if r == context.DeadlineExceeded {
						if _, ok := ctx.Deadline(); !ok {
							return errors.New("no deadline")
						}
						<-ctx.Done()
						return ctx.Err()
					}
					return r
				})
			}
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) || n != tt.fnCalls {
				t.Errorf("err = %v after %d calls of fn; want %v after %d", err, n, tt.want, tt.fnCalls)
			}
		})
	}
}

// TestGRPCClient checks the unary interceptor's retries (by status, with
// the attempt numbered in metadata), its breaker and its fallback, and
// that a stream's end is what its admission policies learn.
func TestGRPCClient(t *testing.T) {
	var calls atomic.Int32
	var mdSeen sync.Map
	svc := &flaky{fail: 2, calls: &calls, md: &mdSeen}
	addr := serveOrders(t, svc)
	t.Run("retries UNAVAILABLE", func(t *testing.T) {
		c := chainOf(t, fastRetry(""), guard.Options{Seed: 1})
		client := ordersClient(t, addr, grpc.WithUnaryInterceptor(guard.UnaryClientInterceptor(c)))
		o, err := client.GetOrder(context.Background(), &demopb.GetOrderRequest{Id: 9})
		if err != nil || o.GetId() != 9 || calls.Load() != 3 {
			t.Fatalf("GetOrder = %v, %v after %d calls; want order 9 after 3", o, err, calls.Load())
		}
		if v, _ := mdSeen.Load(int32(3)); v != "3" {
			t.Errorf("third attempt carried attempt %v, want 3", v)
		}
	})
	t.Run("breaker, then fallback", func(t *testing.T) {
		stub, _ := proto.Marshal(&demopb.Order{Status: "stale"})
		y := fmt.Sprintf("- breaker: {consecutive_failures: 2, failure_rate: 0, open_for: 1m}\n- fallback: {body: %q}\n", stub)
		svc.fail = 1 << 30
		c := chainOf(t, "- breaker: {consecutive_failures: 2, failure_rate: 0, open_for: 1m}\n", guard.Options{})
		client := ordersClient(t, addr, grpc.WithUnaryInterceptor(guard.UnaryClientInterceptor(c)), grpc.WithStreamInterceptor(guard.StreamClientInterceptor(c)))
		for range 2 {
			if _, err := listAll(client); status.Code(err) != codes.Unavailable {
				t.Fatalf("ListOrders: %v, want UNAVAILABLE", err)
			}
		}
		_, err := client.GetOrder(context.Background(), &demopb.GetOrderRequest{Id: 1})
		if !errors.Is(err, guard.ErrOpen) && status.Code(err) != codes.Unavailable {
			t.Errorf("after two failed streams: %v, want the breaker's refusal", err)
		}
		if !strings.Contains(status.Convert(err).Message(), "circuit open") {
			t.Errorf("refusal %v does not say the circuit is open", err)
		}
		fb := chainOf(t, y, guard.Options{})
		client = ordersClient(t, addr, grpc.WithUnaryInterceptor(guard.UnaryClientInterceptor(fb)))
		for range 3 {
			o, err := client.GetOrder(context.Background(), &demopb.GetOrderRequest{Id: 1})
			if err != nil || o.GetStatus() != "stale" {
				t.Errorf("GetOrder = %v, %v; want the fallback's stub", o, err)
			}
		}
	})
}

// flaky fails its first calls with UNAVAILABLE and records the attempt
// number each call carried.
type flaky struct {
	demopb.UnimplementedOrdersServer
	fail  int32
	calls *atomic.Int32
	md    *sync.Map
}

func (f *flaky) GetOrder(ctx context.Context, req *demopb.GetOrderRequest) (*demopb.Order, error) {
	n := f.calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(strings.ToLower(guard.AttemptHeader)); len(v) > 0 {
		f.md.Store(n, v[0])
	}
	if n <= f.fail {
		return nil, status.Error(codes.Unavailable, "down")
	}
	return &demopb.Order{Id: req.GetId()}, nil
}

func (f *flaky) ListOrders(*demopb.ListOrdersRequest, grpc.ServerStreamingServer[demopb.Order]) error {
	return status.Error(codes.Unavailable, "down")
}

// TestParse reports every problem of a chain's YAML at its line.
func TestParse(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"a chain", "- breaker: {failure_rate: 50%}\n- retry: {attempts: 3}\n- timeout: 500ms\n", nil},
		{"empty", "", []string{"1:1: empty chain"}},
		{"an unknown kind", "- breaker: {}\n- retyr: {}\n", []string{`2:3: [1]: unknown policy kind "retyr" (did you mean "retry"?)`}},
		{"bad values", "- retry:\n    attempts: 30\n- timeout: -1s\n", []string{"2:15: [0].retry.attempts: 30 is not 1..10", "3:12: [1].timeout.after: must be above zero"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := guard.Parse([]byte(tt.yaml), "svc")
			if tt.want == nil {
				if err != nil || len(specs) != 3 || specs[0].Name != "svc" {
					t.Errorf("Parse = %v, %v", specs, err)
				}
				return
			}
			var pe *guard.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not say %q", err, w)
				}
			}
		})
	}
}

// TestFile_Reload swaps a file's chain and keeps the state of the
// policies it leaves unchanged: an open breaker stays open.
func TestFile_Reload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.yaml")
	const breaker = "- breaker: {consecutive_failures: 1, failure_rate: 0, open_for: 1m}\n"
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(breaker)
	f, err := guard.OpenFile(path, "deps", guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fail := func(context.Context) error { return errors.New("down") }
	ctx := context.Background()
	caller := &guard.Caller{Chain: f}
	if err := caller.Do(ctx, fail); errors.Is(err, guard.ErrOpen) {
		t.Fatal("refused before any failure")
	}
	steps := []struct {
		file     string
		wantOpen bool
		wantErr  bool
	}{
		{breaker + "- timeout: 1s\n", true, false},
		{"- retry: {attempts: 99}\n", true, true}, // refused: nothing changes
		{"- breaker: {consecutive_failures: 2, failure_rate: 0, open_for: 1m}\n", false, false},
	}
	for i, s := range steps {
		write(s.file)
		err := f.Reload()
		if (err != nil) != s.wantErr {
			t.Fatalf("step %d: Reload = %v", i, err)
		}
		err = caller.Do(ctx, fail)
		if errors.Is(err, guard.ErrOpen) != s.wantOpen {
			t.Errorf("step %d: %v, want open=%v", i, err, s.wantOpen)
		}
	}
}

// slowFirst holds each call's first attempt until it is cancelled and
// answers the others at once.
type slowFirst struct {
	demopb.UnimplementedOrdersServer
}

func (s *slowFirst) GetOrder(ctx context.Context, req *demopb.GetOrderRequest) (*demopb.Order, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(strings.ToLower(guard.AttemptHeader)); len(v) > 0 && v[0] == "1" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &demopb.Order{Id: req.GetId(), Status: "from the hedge"}, nil
}

// TestGRPCClient_Hedge races a second unary attempt against a first the
// server holds: the caller's reply is the second's.
func TestGRPCClient_Hedge(t *testing.T) {
	svc := &slowFirst{}
	addr := serveOrders(t, svc)
	c := chainOf(t, "- hedge: {delay: 1ms, quantile: 0, budget: 100%}\n", guard.Options{})
	client := ordersClient(t, addr, grpc.WithUnaryInterceptor(guard.UnaryClientInterceptor(c)))
	o, err := client.GetOrder(context.Background(), &demopb.GetOrderRequest{Id: 5})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Policies()[0].(*guard.Hedge).HedgeStats()
	if o.GetId() != 5 || o.GetStatus() != "from the hedge" || s.Sent != 1 || s.Won != 1 {
		t.Errorf("got %v with %+v, want the second attempt's reply", o, s)
	}
}
