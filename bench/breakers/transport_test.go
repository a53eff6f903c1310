package breakers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"

	"github.com/resctl/resctl/guard"
)

// The HTTP client benchmarks: one GET over loopback per iteration, its
// body read and closed, through an http.Client whose transport is bare or
// guarded. Nothing fires: the upstream answers 200 at once, so the figure
// is what each guard adds to a round trip. Run with -cpu 1,2.

// loopback serves a small body, and returns its URL and a keep-alive
// transport to it.
func loopback(b *testing.B) (string, *http.Transport) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"paid":true}`)
	}))
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	return srv.URL, tr
}

// get sends one GET with client and reads the answer.
func get(b *testing.B, client *http.Client, url string) {
	resp, err := client.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func runClient(b *testing.B, client *http.Client, url string) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) { run(b, m.parallel, func() { get(b, client, url) }) })
	}
}

// BenchmarkTransport_Bare is the baseline: http.Transport alone.
func BenchmarkTransport_Bare(b *testing.B) {
	url, tr := loopback(b)
	runClient(b, &http.Client{Transport: tr}, url)
}

// BenchmarkTransport_BareTimeout is the baseline with a deadline:
// http.Transport alone under http.Client's own one-second Timeout. A
// request whose context can end costs http.Transport registrations that
// one under context.Background does not, so this is the floor for any
// guard that times calls out.
func BenchmarkTransport_BareTimeout(b *testing.B) {
	url, tr := loopback(b)
	runClient(b, &http.Client{Transport: tr, Timeout: time.Second}, url)
}

// BenchmarkTransport_BareContextTimeout is the baseline with the deadline
// a caller sets by hand: each request under its own
// context.WithTimeout(ctx, time.Second), cancelled once its body is read.
func BenchmarkTransport_BareContextTimeout(b *testing.B) {
	url, tr := loopback(b)
	client := &http.Client{Transport: tr}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			run(b, m.parallel, func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					b.Fatal(err)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		})
	}
}

// resctlChain is a breaker (defaults), a retry (three attempts, default
// budget) and a timeout of a second. headers keeps the retry's attempt
// and request-id headers and the timeout's deadline header, as the proxy
// sends them by default; without, the request goes out as the caller
// wrote it, as the peers send it.
func resctlChain(b *testing.B, headers bool) *guard.Chain {
	br := guard.DefaultBreakerConfig()
	rt := guard.DefaultRetryConfig()
	to := guard.DefaultTimeoutConfig()
	if !headers {
		rt.AttemptHeader, rt.RequestIDHeader, to.Header = "", "", ""
	}
	var ps []guard.Policy
	for _, c := range []guard.Config{&br, &rt, &to} {
		p, err := c.Build("payments", guard.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
	}
	return guard.NewChain(ps...)
}

// BenchmarkTransport_Resctl is guard.NewTransport with breaker, retry and
// timeout, sending the request as written.
func BenchmarkTransport_Resctl(b *testing.B) {
	url, tr := loopback(b)
	runClient(b, &http.Client{Transport: guard.NewTransport(tr, resctlChain(b, false))}, url)
}

// BenchmarkTransport_ResctlHeaders is BenchmarkTransport_Resctl with the
// default headers: each attempt numbered, the request's id, the deadline.
func BenchmarkTransport_ResctlHeaders(b *testing.B) {
	url, tr := loopback(b)
	runClient(b, &http.Client{Transport: guard.NewTransport(tr, resctlChain(b, true))}, url)
}

// BenchmarkTransport_Failsafe is failsafe-go's HTTP round tripper with a
// circuit breaker (50 failures of the last 100), a retry policy (two
// retries) and a timeout of a second.
func BenchmarkTransport_Failsafe(b *testing.B) {
	url, tr := loopback(b)
	cb := circuitbreaker.NewBuilder[*http.Response]().WithFailureThresholdRatio(50, 100).WithDelay(5 * time.Second).Build()
	rp := retrypolicy.NewBuilder[*http.Response]().WithMaxRetries(2).WithBackoff(25*time.Millisecond, time.Second).Build()
	to := timeout.New[*http.Response](time.Second)
	runClient(b, &http.Client{Transport: failsafehttp.NewRoundTripper(tr, cb, rp, to)}, url)
}

// BenchmarkTransport_Gobreaker is gobreaker's two-step breaker wrapped
// around http.Client.Do, with a timeout of a second on the client (gobreaker
// has neither retries nor timeouts).
func BenchmarkTransport_Gobreaker(b *testing.B) {
	url, tr := loopback(b)
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "payments"})
	client := &http.Client{Transport: tr, Timeout: time.Second}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			run(b, m.parallel, func() {
				done, err := cb.Allow()
				if err != nil {
					b.Fatal(err)
				}
				resp, err := client.Get(url)
				if err != nil {
					done(err)
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				done(nil)
			})
		})
	}
}

// The round-tripper benchmarks measure the same guards without a network:
// the base round tripper answers at once with a fresh 200 (one allocation,
// the same for every variant), and each iteration calls RoundTrip
// directly and closes the body. What a variant costs over
// BenchmarkRoundTripper_Bare is what it adds to every call.

// stub answers every request with a new empty 200.
type stub struct{}

func (stub) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
}

func runRoundTripper(b *testing.B, rt http.RoundTripper) {
	req, err := http.NewRequest(http.MethodGet, "http://payments.internal/api/pay", nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			run(b, m.parallel, func() {
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			})
		})
	}
}

// BenchmarkRoundTripper_Bare is the stub alone.
func BenchmarkRoundTripper_Bare(b *testing.B) { runRoundTripper(b, stub{}) }

// BenchmarkRoundTripper_Resctl is guard.NewTransport with breaker, retry
// and timeout, sending the request as written.
func BenchmarkRoundTripper_Resctl(b *testing.B) {
	runRoundTripper(b, guard.NewTransport(stub{}, resctlChain(b, false)))
}

// BenchmarkRoundTripper_ResctlHeaders adds the default headers.
func BenchmarkRoundTripper_ResctlHeaders(b *testing.B) {
	runRoundTripper(b, guard.NewTransport(stub{}, resctlChain(b, true)))
}

// BenchmarkRoundTripper_Failsafe is failsafe-go's round tripper with
// circuit breaker, retry policy and timeout, as BenchmarkTransport_Failsafe.
func BenchmarkRoundTripper_Failsafe(b *testing.B) {
	cb := circuitbreaker.NewBuilder[*http.Response]().WithFailureThresholdRatio(50, 100).WithDelay(5 * time.Second).Build()
	rp := retrypolicy.NewBuilder[*http.Response]().WithMaxRetries(2).WithBackoff(25*time.Millisecond, time.Second).Build()
	to := timeout.New[*http.Response](time.Second)
	runRoundTripper(b, failsafehttp.NewRoundTripper(stub{}, cb, rp, to))
}

// gobreakerRT is gobreaker's two-step breaker around a round tripper.
type gobreakerRT struct {
	cb   *gobreaker.TwoStepCircuitBreaker[struct{}]
	next http.RoundTripper
}

func (g gobreakerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	done, err := g.cb.Allow()
	if err != nil {
		return nil, err
	}
	resp, err := g.next.RoundTrip(r)
	done(err)
	return resp, err
}

// BenchmarkRoundTripper_Gobreaker is gobreaker's breaker alone (it has
// no retries or timeouts).
func BenchmarkRoundTripper_Gobreaker(b *testing.B) {
	runRoundTripper(b, gobreakerRT{cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "payments"}), next: stub{}})
}
