package load

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/resctl/resctl/check"
	"github.com/resctl/resctl/record"
)

// DefaultTimeout bounds each request when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultMaxInFlight caps the requests in flight when Options.MaxInFlight is
// zero. An open-loop generator facing a target that slows down opens ever
// more connections; past a point that measures the generator's machine
// (file descriptors, memory), not the target. At the cap a request is
// dropped — counted as a failure and as dropped — and the schedule goes on:
// slowing it down would hide exactly the slowness under test.
const DefaultMaxInFlight = 2048

// Request is one request of the load mix; requests are sent round-robin.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	// Expect, if set, checks every response; one that fails a check is a
	// failed request, with the check's reason.
	Expect *check.Spec
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
	// Results, if set, receives every result too, in vegeta's encoding.
	Results *ResultsFile
	// MaxInFlight caps concurrent requests; 0 means DefaultMaxInFlight.
	// At the cap a request is dropped, or with WaitAtCap the schedule
	// waits for a request to end: the generator falls behind, and the
	// response times, measured from when each request was due, show it.
	MaxInFlight int
	WaitAtCap   bool
	// Hold, if set, is asked before the first request of each step after
	// the first; a non-nil channel holds the step's requests back until it
	// is closed. The runner uses it so that no request of a phase goes out
	// before a steady-state check of the phase before it has passed.
	Hold func(step int) <-chan struct{}
	// Start, when set, is the instant the schedule counts from, rather
	// than when the generator got going: the runner switches faults on a
	// clock that starts then, and a generator that took a while to set up
	// sends its first requests late — and shows it.
	Start time.Time
}

// Stats describe a finished load run.
type Stats struct {
	// Sent counts requests sent.
	Sent uint64
	// Dropped counts requests not sent because MaxInFlight requests
	// were already in flight.
	Dropped uint64
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
	checks := make([]*check.Checks, len(opts.Requests))
	maxBody := int64(0)
	for i, r := range opts.Requests {
		c, err := check.Compile(r.Expect, false)
		if err != nil {
			return Stats{}, fmt.Errorf("load: request %d: %w", i+1, err)
		}
		checks[i] = c
		h := r.Header.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set(requestHeader, strconv.Itoa(i))
		targets[i] = vegeta.Target{Method: r.Method, URL: base + r.Path, Header: h, Body: r.Body}
		if c.NeedsBody() {
			maxBody = check.DefaultBodyLimit
		}
	}

	cut, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := newTransport(opts.H2C)
	// Every request has ended when Run returns: close the kept-alive
	// connections, so none of the transport's goroutines outlive the run.
	defer tr.CloseIdleConnections()
	tg := &tagger{ctx: cut, rt: tr, pacer: opts.Pacer}
	workers := uint64(maxInFlight)
	if !opts.WaitAtCap {
		tg.slots = make(chan struct{}, maxInFlight)
		workers += dropWorkers
	}
	client := &http.Client{
		Timeout:   timeout,
		Transport: tg,
		// A proxy under test should answer, not redirect: report the
		// redirect itself instead of following it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	atk := vegeta.NewAttacker(
		vegeta.Client(client),
		// Bodies are read fully, which keeps connections reusable, and
		// kept only up to the limit when a check reads them; the tagger
		// counts every byte, for body_size and the results file.
		vegeta.MaxBody(maxBody),
		// Dropping at the cap is the tagger's: the workers beyond the cap
		// only ever carry a drop, which takes no time, so the schedule
		// never waits. Waiting at the cap is vegeta's own: no free worker.
		vegeta.MaxWorkers(workers),
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
	began := cmp.Or(opts.Start, time.Now())
	pacer := newInterruptible(ctx, opts.Pacer, opts.Hold, opts.Start)
	results := atk.Attack(vegeta.NewStaticTargeter(targets...), pacer, opts.Pacer.Duration(), "resctl")
	for res := range results {
		// The client wraps the error as `Get "url": …`.
		dropped := IsDropped(res.Error)
		if dropped {
			st.Dropped++
		} else {
			st.Sent++
		}
		x := tg.exchange(res.Seq)
		if ctx.Err() != nil && res.Code == 0 {
			continue // cut short by the interrupt
		}
		var c *check.Checks
		if x != nil {
			c = checks[x.request]
			res.BytesIn = uint64(x.size.Load())
		}
		reason := httpReason(int(res.Code), res.Error, c, check.Response{Status: int(res.Code), Header: res.Headers, Size: int64(res.BytesIn), Body: res.Body})
		switch {
		case strings.HasPrefix(reason, ReasonCheck+": "):
			res.Error = reason // so that vegeta and merge count it failed, and why
		case reason == "":
			res.Error = "" // a status the checks allow
		}
		if opts.Results != nil {
			opts.Results.Write(*res, pacer.origin(), pacer.intended(res.Seq))
		}
		opts.Recorder.Add(record.Result{
			Sent:     res.Timestamp,
			Intended: pacer.intended(res.Seq),
			Latency:  res.Latency,
			Code:     int(res.Code),
			Failed:   reason != "",
			Reason:   reason,
			Dropped:  dropped,
			Fallback: reason == "" && res.Headers.Get(FallbackHeader) != "",
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

	// began is when vegeta started the attack (UnixNano), learnt from the
	// first Pace call; held is, per step, how long a Hold gate kept the
	// schedule waiting before it. Both are read by the results loop.
	began atomic.Int64
	held  []atomic.Int64
	// start, when set, is the schedule's origin (Options.Start).
	start time.Time
}

func newInterruptible(ctx context.Context, p *Pacer, hold func(int) <-chan struct{}, start time.Time) *interruptible {
	w := &interruptible{ctx: ctx, p: p, hold: hold, held: make([]atomic.Int64, len(p.steps)), start: start}
	if !start.IsZero() {
		w.began.Store(start.UnixNano())
	}
	return w
}

// intended is when hit k was due: the schedule's time for it, moved on by
// the holds before its step, which are resctl's own pauses and not the
// generator falling behind.
func (w *interruptible) intended(k uint64) time.Time {
	began := w.began.Load()
	at, ok := w.p.TimeOfHit(k)
	if began == 0 || !ok {
		return time.Time{}
	}
	step := w.p.StepOf(k)
	for i := 0; i <= step && i < len(w.held); i++ {
		at += time.Duration(w.held[i].Load())
	}
	return time.Unix(0, began).Add(at)
}

// origin is the schedule's start; zero before the first hit.
func (w *interruptible) origin() time.Time {
	if began := w.began.Load(); began != 0 {
		return time.Unix(0, began)
	}
	return time.Time{}
}

// Rate implements vegeta.Pacer.
func (w *interruptible) Rate(elapsed time.Duration) float64 { return w.p.Rate(elapsed) }

// Pace implements vegeta.Pacer.
func (w *interruptible) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if !w.start.IsZero() {
		elapsed = time.Since(w.start)
	}
	if hits == 0 && w.began.Load() == 0 {
		w.began.Store(time.Now().Add(-elapsed).UnixNano())
	}
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
			waiting := time.Now()
			select {
			case <-gate:
			case <-w.ctx.Done():
				return 0, true
			}
			w.held[step].Store(int64(time.Since(waiting)))
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
	// slots holds a token per request in flight; at the cap a request
	// is dropped. Nil when the schedule waits at the cap instead.
	slots chan struct{}
	// exchanges holds, by vegeta's sequence number, which request of the
	// mix a hit sent and how many body bytes came back, until the result
	// loop takes it.
	exchanges sync.Map
}

// exchange is what the tagger learnt of one hit.
type exchange struct {
	request int
	size    atomic.Int64
}

// exchange returns, and forgets, what the tagger learnt of hit seq; nil
// for a hit that never reached it.
func (c *tagger) exchange(seq uint64) *exchange {
	x, ok := c.exchanges.LoadAndDelete(seq)
	if !ok {
		return nil
	}
	return x.(*exchange)
}

// requestHeader carries a request's place in the mix from its target to
// the tagger, which removes it.
const requestHeader = "X-Resctl-Request"

// ErrDropped is the error of a request dropped at the in-flight cap. It
// reaches the results as vegeta's error text, which is how Run tells a
// drop from a failure.
var ErrDropped = errors.New("resctl: dropped: max_in_flight requests already in flight")

// dropWorkers are the attack's workers beyond the in-flight cap.
const dropWorkers = 64

func (c *tagger) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.slots != nil {
		select {
		case c.slots <- struct{}{}:
		default:
			return nil, ErrDropped
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(c.ctx, cancel)
	var once sync.Once
	release := func() {
		once.Do(func() {
			stop()
			cancel()
			if c.slots != nil {
				<-c.slots
			}
		})
	}
	out := r.Clone(ctx)
	x := &exchange{}
	x.request, _ = strconv.Atoi(out.Header.Get(requestHeader))
	out.Header.Del(requestHeader)
	if seq := out.Header.Get(vegetaSeqHeader); seq != "" {
		if k, err := strconv.ParseUint(seq, 10, 64); err == nil {
			out.Header.Set(PhaseHeader, c.pacer.steps[c.pacer.StepOf(k)].Name)
			out.Header.Set(SeqHeader, seq)
			c.exchanges.Store(k, x)
		}
	}
	out.Header.Del(vegetaSeqHeader)
	out.Header.Del(vegetaAttackHeader)
	resp, err := c.rt.RoundTrip(out)
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release, size: &x.size}
	return resp, nil
}

// releasingBody frees the request's cancellation hook once the body is
// closed, so hooks do not pile up over a long run, and counts the body's
// bytes as they are read.
type releasingBody struct {
	io.ReadCloser
	release func()
	size    *atomic.Int64
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.size.Add(int64(n))
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
