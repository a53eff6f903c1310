package load

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bojand/ghz/runner"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/resctl/resctl/check"
	"github.com/resctl/resctl/record"
)

// How every gRPC call's result reaches the Recorder.
//
// ghz reports calls only to its own Reporter, through a stats handler it
// installs itself and a channel it does not export; its options offer no
// stats handler, interceptor or dial option of our own. They do offer a
// load-balancing policy by name (runner.WithClientLoadBalancing), and a
// balancer's picker sees every call: Pick gets the call's context, which
// carries the x-resctl-seq metadata, and a successful pick's Done gets the
// call's outcome. So RunGRPC's connections use lbName, pick_first with a
// picker that notes each call (callTracker.pick) and its outcome; the call
// counts as ended when its context ends, which gRPC does as it finishes the
// call, and also when a call waiting for a connection runs out of time.
//
// The balancer is registered once per process. It finds its run by the
// authority part of the target ghz dials, "passthrough://<token>/host:port":
// the passthrough resolver ignores it, and the :authority header is still
// host:port.

// lbName names resctl's load-balancing policy.
const lbName = "resctl_load"

var (
	registerLB sync.Once
	// runs maps a run's token to its callTracker.
	runs     sync.Map
	runCount atomic.Uint64
)

// Metadata keys resctl adds to every call, the gRPC spelling of PhaseHeader
// and SeqHeader.
var (
	phaseKey = strings.ToLower(PhaseHeader)
	seqKey   = strings.ToLower(SeqHeader)
)

// trackRun registers t for a run and returns the target ghz must dial for
// its calls to reach t, and a function that unregisters it.
func trackRun(t *callTracker, target string) (string, func()) {
	registerLB.Do(func() { balancer.Register(lbBuilder{}) })
	token := "resctl-run-" + strconv.FormatUint(runCount.Add(1), 10)
	runs.Store(token, t)
	return "passthrough://" + token + "/" + target, func() { runs.Delete(token) }
}

type lbBuilder struct{}

func (lbBuilder) Name() string { return lbName }

func (lbBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	pf := balancer.Get(pickfirst.Name)
	if t, ok := runs.Load(opts.Target.URL.Host); ok {
		cc = &trackingCC{ClientConn: cc, calls: t.(*callTracker)}
	}
	return pf.Build(cc, opts)
}

// trackingCC hands pick_first's pickers out wrapped.
type trackingCC struct {
	balancer.ClientConn
	calls *callTracker
}

func (c *trackingCC) UpdateState(s balancer.State) {
	s.Picker = &trackingPicker{next: s.Picker, calls: c.calls}
	c.ClientConn.UpdateState(s)
}

type trackingPicker struct {
	next  balancer.Picker
	calls *callTracker
}

func (p *trackingPicker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	c := p.calls.pick(info.Ctx)
	if c != nil && c.dropped {
		return balancer.PickResult{}, errDroppedCall // ends the call unsent
	}
	res, err := p.next.Pick(info)
	if c == nil {
		return res, err
	}
	if err != nil {
		// No connection: the call waits for one, or (ghz's calls are
		// fail-fast) ends with this error, as gRPC reports it.
		if err != balancer.ErrNoSubConnAvailable {
			outcome := err
			if _, ok := status.FromError(err); !ok {
				outcome = status.Error(codes.Unavailable, err.Error())
			}
			p.calls.outcome(c, outcome, false)
		}
		return res, err
	}
	done := res.Done
	res.Done = func(di balancer.DoneInfo) {
		// gRPC calls Done with nothing in it when the picked connection
		// turned out not to be ready and it picks again: no outcome yet.
		if di.Err == nil && !di.BytesSent {
			if done != nil {
				done(di)
			}
			return
		}
		p.calls.outcome(c, di.Err, len(di.Trailer.Get(FallbackHeader)) > 0)
		if done != nil {
			done(di)
		}
	}
	return res, nil
}

// errDroppedCall ends a call dropped at the in-flight cap. gRPC ends a call
// at once, unsent, when its pick fails with a status.
var errDroppedCall = status.Error(codes.ResourceExhausted, ErrDropped.Error())

// callTracker follows one run's calls from their first pick to their end
// and records each into rec.
type callTracker struct {
	pacer *Pacer
	rec   *record.Recorder
	// cut reports whether the run was interrupted; calls it cut short are
	// not counted.
	cut func() bool
	// md is the metadata every call carries besides resctl's own.
	md metadata.MD
	// intended is when the schedule meant call k to go out.
	intended func(k uint64) time.Time
	// slots holds a token per call in flight; at the cap a call is
	// dropped. Nil when the schedule waits at the cap instead.
	slots chan struct{}
	// results, if set, gets every result too, as a POST to url, with the
	// schedule's start as origin gives it.
	results *ResultsFile
	url     string
	origin  func() time.Time
	// checks verify every call; awaiting, when the checks or the results
	// file (for its size) need a unary call's response, holds each call
	// until it comes.
	checks   *check.Checks
	awaiting *awaiting

	started atomic.Uint64 // calls ghz began
	dropped atomic.Uint64 // of which dropped at the cap
	pending sync.WaitGroup

	mu     sync.Mutex
	next   uint64               // the number of the next call
	sentAt map[uint64]time.Time // when each call not yet picked began
	calls  map[uint64]*call
	active int           // calls begun and not yet ended
	idleCh chan struct{} // closed when active drops to 0
}

// call is one call between its first pick and its end.
type call struct {
	seq  uint64
	sent time.Time
	// err and at are the outcome, once known, and when it became known.
	err   error
	at    time.Time
	known bool
	// fallback is true once a guard's fallback answered it (a trailer
	// says so).
	fallback bool
	// dropped is true for a call the in-flight cap left no room for;
	// slot for one that holds a token of it.
	dropped, slot bool
}

func newCallTracker(p *Pacer, rec *record.Recorder, md metadata.MD, intended func(uint64) time.Time, cut func() bool) *callTracker {
	return &callTracker{pacer: p, rec: rec, md: md, intended: intended, cut: cut, calls: map[uint64]*call{}, sentAt: map[uint64]time.Time{}}
}

// metadata is ghz's MetadataProviderFunc: each call carries the step it is
// scheduled in and its place in the schedule, as HTTP requests carry
// PhaseHeader and SeqHeader.
func (t *callTracker) metadata(cd *runner.CallData) (*metadata.MD, error) {
	t.started.Add(1)
	// The call's number and its send time are taken together, as vegeta
	// takes a hit's, so that send times rise with the numbers: vegeta's
	// plot refuses results whose times go back. ghz's own numbers come in
	// the order its workers took them, not in the order they start.
	t.mu.Lock()
	t.active++
	seq := t.next
	t.next++
	t.sentAt[seq] = time.Now()
	t.mu.Unlock()
	md := make(metadata.MD, len(t.md)+2)
	for k, v := range t.md {
		md[k] = v
	}
	md[phaseKey] = []string{t.pacer.steps[t.pacer.StepOf(seq)].Name}
	md[seqKey] = []string{strconv.FormatUint(seq, 10)}
	return &md, nil
}

// pick returns the call ctx belongs to, noting it on its first pick; nil
// for a call that is not one of the run's (it carries no sequence number).
func (t *callTracker) pick(ctx context.Context) *call {
	md, _ := metadata.FromOutgoingContext(ctx)
	seq, ok := seqOf(md)
	if !ok {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.calls[seq]; c != nil {
		return c // a pick after waiting for a connection, or a retry
	}
	sent, ok := t.sentAt[seq]
	if !ok {
		sent = time.Now()
	}
	delete(t.sentAt, seq)
	c := &call{seq: seq, sent: sent}
	if t.slots != nil {
		select {
		case t.slots <- struct{}{}:
			c.slot = true
		default:
			c.dropped = true
			t.dropped.Add(1)
		}
	}
	t.calls[seq] = c
	t.pending.Add(1)
	context.AfterFunc(ctx, func() { t.end(c, ctx) })
	return c
}

// seqOf reads a call's place in the schedule from its metadata.
func seqOf(md metadata.MD) (uint64, bool) {
	v := md.Get(seqKey)
	if len(v) != 1 {
		return 0, false
	}
	seq, err := strconv.ParseUint(v[0], 10, 64)
	return seq, err == nil
}

// outcome notes how c ended (so far: a transparent retry may follow), and
// whether a guard's fallback answered it.
func (t *callTracker) outcome(c *call, err error, fallback bool) {
	now := time.Now()
	t.mu.Lock()
	c.err, c.at, c.known, c.fallback = err, now, true, fallback
	t.mu.Unlock()
}

// end records c once its context is done, and once its response is
// known when the checks read it.
func (t *callTracker) end(c *call, ctx context.Context) {
	t.mu.Lock()
	delete(t.calls, c.seq)
	err, at, known, fallback := c.err, c.at, c.known, c.fallback
	if t.active--; t.active == 0 && t.idleCh != nil {
		close(t.idleCh)
		t.idleCh = nil
	}
	t.mu.Unlock()
	if c.slot {
		<-t.slots
	}
	res := record.Result{
		Sent:     c.sent,
		Intended: t.intended(c.seq),
		Phase:    t.pacer.StepOf(c.seq) + 1,
	}
	if c.dropped {
		res.Failed, res.Dropped, res.Reason = true, true, dropReason
		if !t.cut() {
			t.add(c.seq, res, ErrDropped.Error(), 0)
		}
		t.forget(c.seq)
		t.pending.Done()
		return
	}
	if !known { // it never got a connection
		err, at = status.FromContextError(ctx.Err()).Err(), time.Now()
	}
	code := status.Code(err)
	if t.cut() && (code == codes.Canceled || code == codes.Unavailable) {
		t.forget(c.seq)
		t.pending.Done()
		return // cut short by the interrupt: it says nothing about the target
	}
	res.Latency = at.Sub(c.sent)
	res.Code = HTTPStatusFromCode(code)
	res.GRPCCode = code.String()
	var msg string
	if err != nil {
		msg = err.Error()
	}
	// A call that ended at its own deadline timed out, whichever side's
	// DeadlineExceeded arrived first: the server, which was told the
	// deadline, may answer with the status a moment before the client's
	// timer fires. One that ended well before it (in the last tenth of
	// its time or earlier) carries the server's own status.
	ownDeadline := false
	if dl, ok := ctx.Deadline(); ok && code == codes.DeadlineExceeded {
		ownDeadline = !at.Before(dl.Add(-dl.Sub(c.sent) / 10))
	}
	finish := func(r *response) {
		defer t.pending.Done()
		in := check.Response{Status: res.Code, GRPCCode: res.GRPCCode}
		var size int64
		if r != nil {
			in.Body, size = r.json, r.size
		}
		res.Reason = grpcReason(code, msg, t.checks, in)
		if ownDeadline && res.Reason == ReasonStatus+": "+code.String() {
			res.Reason = transportReason("deadline exceeded")
		}
		res.Failed = res.Reason != ""
		res.Fallback = fallback && !res.Failed
		if strings.HasPrefix(res.Reason, ReasonCheck+": ") {
			msg = res.Reason
		}
		t.add(c.seq, res, msg, size)
	}
	if t.awaiting == nil {
		finish(nil)
		return
	}
	t.awaiting.end(c.seq, finish)
}

// forget drops the response of a call recorded without it, whenever it
// comes, so that none is kept.
func (t *callTracker) forget(seq uint64) {
	if t.awaiting != nil {
		t.awaiting.end(seq, func(*response) {})
	}
}

// response hands a unary call's response to its checks.
func (t *callTracker) response(seq uint64, r *response) { t.awaiting.response(seq, r) }

// add records res, and saves it if asked, in vegeta's terms.
func (t *callTracker) add(seq uint64, res record.Result, errText string, size int64) {
	if t.results != nil {
		t.results.Write(vegeta.Result{
			Attack:    "resctl",
			Seq:       seq,
			Code:      uint16(res.Code),
			Timestamp: res.Sent,
			Latency:   res.Latency,
			BytesIn:   uint64(size),
			Error:     errText,
			Method:    http.MethodPost,
			URL:       t.url,
		}, t.origin(), res.Intended)
	}
	t.rec.Add(res)
}

// idle returns a channel closed once every call begun so far has ended. A
// call that never reached a pick (it failed before) never ends here, so
// wait on it with a limit.
func (t *callTracker) idle() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if t.idleCh == nil {
		t.idleCh = make(chan struct{})
	}
	return t.idleCh
}

// wait returns once every call noted so far is recorded.
func (t *callTracker) wait() { t.pending.Wait() }

// HTTPStatusFromCode maps a gRPC status code to the HTTP status a
// grpc-gateway would answer with, so gRPC results count in the same codes,
// error rates and SLAs as HTTP ones. The gRPC code itself is kept in
// record.Result.GRPCCode.
func HTTPStatusFromCode(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return statusClientClosed
	case codes.Unknown, codes.Internal, codes.DataLoss:
		return http.StatusInternalServerError
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// statusClientClosed is nginx's "client closed request", grpc-gateway's
// answer for CANCELLED.
const statusClientClosed = 499
