package load

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/resctl/resctl/record"
)

// DefaultTimeout bounds each request when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultMaxInFlight caps the requests in flight when Options.MaxInFlight is
// zero. An open-loop generator facing a target that slows down opens ever
// more connections; past a point that measures the generator's machine
// (file descriptors, memory), not the target. At the cap the schedule waits,
// and the run reports that the generator fell behind.
const DefaultMaxInFlight = 2048

// Request is one request of the load mix; requests are sent round-robin.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Options configure a load run.
type Options struct {
	// BaseURL is where requests go, e.g. "http://127.0.0.1:41234".
	BaseURL  string
	Requests []Request
	// Pacer is the schedule; its Duration bounds the run.
	Pacer *Pacer
	// Timeout bounds each request.
	Timeout time.Duration
	// H2C sends requests as HTTP/2 without TLS instead of HTTP/1.1.
	H2C bool
	// Recorder receives every result.
	Recorder *record.Recorder
	// MaxInFlight caps concurrent requests; 0 means DefaultMaxInFlight.
	MaxInFlight int
	// Hold, if set, is asked before the first request of each step after
	// the first; a non-nil channel holds the step's requests back until it
	// is closed. The runner uses it so that no request of a phase goes out
	// before a steady-state check of the phase before it has passed.
	Hold func(step int) <-chan struct{}
}

// Stats describe a finished load run.
type Stats struct {
	// Sent counts requests sent.
	Sent uint64
	// Scheduled counts the requests the schedule asked for in the time the
	// run lasted; Sent falls short of it when the generator fell behind.
	Scheduled uint64
	// Interrupted is true when the run stopped before its schedule ended.
	Interrupted bool
}

// Run sends the load and folds every result into opts.Recorder. It returns
// when the schedule is done or ctx is cancelled; requests in flight at
// cancellation are cut short and not counted, since their outcome says
// nothing about the target.
func Run(ctx context.Context, opts Options) (Stats, error) {
	if len(opts.Requests) == 0 {
		return Stats{}, errors.New("load: no requests to send")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxInFlight := opts.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	base := strings.TrimSuffix(opts.BaseURL, "/")
	targets := make([]vegeta.Target, len(opts.Requests))
	for i, r := range opts.Requests {
		targets[i] = vegeta.Target{Method: r.Method, URL: base + r.Path, Header: r.Header.Clone(), Body: r.Body}
	}

	cut, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := newTransport(opts.H2C)
	// Every request has ended when Run returns: close the kept-alive
	// connections, so none of the transport's goroutines outlive the run.
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Timeout:   timeout,
		Transport: &tagger{ctx: cut, rt: tr, pacer: opts.Pacer},
		// A proxy under test should answer, not redirect: report the
		// redirect itself instead of following it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	atk := vegeta.NewAttacker(
		vegeta.Client(client),
		// Response bodies are not inspected; reading them fully keeps
		// connections reusable, storing them would grow with requests.
		vegeta.MaxBody(0),
		vegeta.MaxWorkers(uint64(maxInFlight)),
		// vegeta's HTTP2, H2C and KeepAlive options assume its own
		// transport; ours above already keeps connections alive and
		// speaks exactly the protocol asked for, so they are not used.
	)

	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			atk.Stop()
			cancel()
		case <-stopped:
		}
	}()
	defer close(stopped)

	var st Stats
	began := time.Now()
	pacer := &interruptible{ctx: ctx, p: opts.Pacer, hold: opts.Hold}
	results := atk.Attack(vegeta.NewStaticTargeter(targets...), pacer, opts.Pacer.Duration(), "resctl")
	for res := range results {
		st.Sent++
		if ctx.Err() != nil && res.Code == 0 {
			continue // cut short by the interrupt
		}
		opts.Recorder.Add(record.Result{
			Sent:     res.Timestamp,
			Latency:  res.Latency,
			Code:     int(res.Code),
			Failed:   res.Error != "",
			Fallback: res.Error == "" && res.Headers.Get(FallbackHeader) != "",
			Phase:    opts.Pacer.StepOf(res.Seq) + 1,
		})
	}
	st.Interrupted = ctx.Err() != nil
	st.Scheduled = uint64(math.Ceil(opts.Pacer.Hits(time.Since(began))))
	return st, nil
}

// interruptible waits for the next hit inside Pace, where a cancelled run
// can cut the wait short; vegeta sleeps whatever wait a pacer returns
// without watching Stop, so at low rates an interrupt would otherwise wait
// out the gap to the next hit (and send it). Only vegeta's pacing goroutine
// calls Pace, so the timer needs no lock.
type interruptible struct {
	ctx   context.Context
	p     *Pacer
	timer *time.Timer
	hold  func(step int) <-chan struct{}
	step  int // the step of the last hit paced
}

// Rate implements vegeta.Pacer.
func (w *interruptible) Rate(elapsed time.Duration) float64 { return w.p.Rate(elapsed) }

// Pace implements vegeta.Pacer.
func (w *interruptible) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	wait, stop := w.p.Pace(elapsed, hits)
	if stop || w.ctx.Err() != nil {
		return 0, true
	}
	if step := w.p.StepOf(hits); step != w.step && w.hold != nil {
		w.step = step
		if gate := w.hold(step); gate != nil {
			if !w.sleep(wait) {
				return 0, true
			}
			select {
			case <-gate:
			case <-w.ctx.Done():
				return 0, true
			}
			return 0, false
		}
	}
	if !w.sleep(wait) {
		return 0, true
	}
	return 0, false
}

// sleep waits d unless the run is cancelled first; false if it was.
func (w *interruptible) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.timer.C:
		return true
	case <-w.ctx.Done():
		w.timer.Stop()
		return false
	}
}

func newTransport(h2c bool) *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		// Load goes where the scenario says, never through a proxy from
		// the environment.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 10000,
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
	}
	var p http.Protocols
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr.Protocols = &p
	return tr
}

// PhaseHeader carries the name of the schedule step (the scenario phase) a
// request belongs to, so the fault switchboard applies exactly that phase's
// faults to it, even when it reaches the proxy a moment after the phase
// clock has moved on. SeqHeader carries the request's sequence number.
const (
	PhaseHeader = "X-Resctl-Phase"
	SeqHeader   = "X-Resctl-Seq"
)

// FallbackHeader marks a response a guard's fallback served instead of the
// upstream; the load counts such successes as fallbacks.
const FallbackHeader = "X-Resctl-Fallback"

// vegeta's own request headers, replaced by resctl's.
const (
	vegetaSeqHeader    = "X-Vegeta-Seq"
	vegetaAttackHeader = "X-Vegeta-Attack"
)

// tagger is the load's RoundTripper. It labels each request with its phase
// and ties it to ctx as well as to its own context, so an interrupted run
// does not wait for requests in flight to time out.
type tagger struct {
	ctx   context.Context
	rt    http.RoundTripper
	pacer *Pacer
}

func (c *tagger) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(c.ctx, cancel)
	release := func() { stop(); cancel() }
	out := r.Clone(ctx)
	if seq := out.Header.Get(vegetaSeqHeader); seq != "" {
		if k, err := strconv.ParseUint(seq, 10, 64); err == nil {
			out.Header.Set(PhaseHeader, c.pacer.steps[c.pacer.StepOf(k)].Name)
			out.Header.Set(SeqHeader, seq)
		}
	}
	out.Header.Del(vegetaSeqHeader)
	out.Header.Del(vegetaAttackHeader)
	resp, err := c.rt.RoundTrip(out)
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// releasingBody frees the request's cancellation hook once the body is
// closed, so hooks do not pile up over a long run.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
