package load

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	ghzload "github.com/bojand/ghz/load"
	"github.com/bojand/ghz/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/resctl/resctl/check"
	"github.com/resctl/resctl/record"
)

// ErrUnreachable is returned (wrapped) by RunGRPC when the target does not
// accept connections, before any load is sent.
var ErrUnreachable = errors.New("target unreachable")

// dialTimeout bounds the connection check before a gRPC run, as it bounds
// the HTTP load's dials.
const dialTimeout = 5 * time.Second

// GRPCOptions configure a gRPC load run. Pacer, Timeout, Recorder,
// Results, MaxInFlight, WaitAtCap and Hold mean what they mean in Options;
// a saved call is a POST to its HTTP/2 path, with the status mapped to
// HTTP's.
type GRPCOptions struct {
	// Target is the server's host:port, e.g. "127.0.0.1:50051".
	Target string
	// Call names the method, "pkg.Service/Method" ("pkg.Service.Method"
	// works too).
	Call string
	// Data is the request message as JSON: a string, []byte or
	// json.RawMessage as is, any other value (such as a map) marshalled.
	// nil sends an empty message. A client-streaming call sends a JSON
	// array as a stream of messages; other calls take its elements in
	// turn. It is sent as given: no templates.
	Data any
	// Metadata goes with every call, beside x-resctl-phase and
	// x-resctl-seq, which resctl sets.
	Metadata map[string]string
	// Proto is a .proto file that defines the service, read with
	// ImportPaths; Protoset a FileDescriptorSet (protoc
	// --include_imports --descriptor_set_out). With neither, the method
	// is looked up by server reflection.
	Proto       string
	ImportPaths []string
	Protoset    string
	Pacer       *Pacer
	Timeout     time.Duration
	Recorder    *record.Recorder
	Results     *ResultsFile
	MaxInFlight int
	WaitAtCap   bool
	Hold        func(step int) <-chan struct{}
	Start       time.Time
	// Expect, if set, checks every call: its status, and the response
	// message of a unary call.
	Expect *check.Spec
	// TLS, if set, secures the connection; nil speaks plaintext HTTP/2
	// (h2c), as the demo target and the harness proxy do.
	TLS *GRPCTLS
}

// GRPCTLS configures TLS for a gRPC run.
type GRPCTLS struct {
	// CACert is a PEM file of the CAs to trust; empty trusts the system's.
	CACert string
	// Cert and Key are PEM files of a client certificate, for mutual TLS.
	Cert, Key string
	// ServerName is the name the server's certificate must carry, when
	// not the target's host.
	ServerName string
	// SkipVerify accepts any server certificate.
	SkipVerify bool
}

// ErrInvalid is returned (wrapped) by RunGRPC for load that cannot be sent
// as given — an unknown method, a proto that does not parse, data that does
// not fit the request message, malformed metadata — found before any call
// is sent: a mistake in the scenario, not a failure of the target.
var ErrInvalid = errors.New("invalid gRPC load")

// invalidError marks err as ErrInvalid and reads as err alone.
type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }

// invalid marks an error found before any call was sent as bad input,
// unless the target was unreachable.
func invalid(err error) error {
	if err == nil || errors.Is(err, ErrUnreachable) {
		return err
	}
	return invalidError{err}
}

// RunGRPC sends gRPC load with ghz and folds every call's result into
// opts.Recorder as it ends, mirroring Run: one requester for the whole
// run, paced by opts.Pacer, each call carrying the metadata x-resctl-phase
// (the name of its step) and x-resctl-seq (its place in the schedule), and
// counted in the phase the schedule put it in, from when it was due. A
// status maps to Code as grpc-gateway maps it to HTTP (HTTPStatusFromCode);
// any status but OK is a failure.
//
// Bad options, a method the proto, protoset or server does not define, and
// data that does not fit the request message are reported before any load
// is sent, as is a target that refuses connections (ErrUnreachable). It
// returns when the schedule is done or ctx is cancelled; calls in flight at
// cancellation are cut short and not counted.
//
// Calls are made by ghz's synchronous workers, one call each at a time.
// With WaitAtCap there are MaxInFlight of them, so at the cap the schedule
// waits for a free one. Otherwise a few more carry the calls beyond the
// cap, which are dropped before they are sent, as in Run. (ghz's async
// mode would start a goroutine per call, without bound.)
func RunGRPC(ctx context.Context, opts GRPCOptions) (Stats, error) {
	in, err := opts.check()
	if err != nil {
		return Stats{}, invalid(err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxInFlight := opts.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}

	mtd, err := findMethod(ctx, opts, in.creds, timeout)
	if err != nil {
		if ctx.Err() != nil {
			return Stats{Interrupted: true}, nil
		}
		return Stats{}, invalid(err)
	}
	if err := fits(in.data, mtd.Input()); err != nil {
		return Stats{}, invalid(fmt.Errorf("load: grpc: data does not fit %s: %w", mtd.Input().FullName(), err))
	}
	set, err := protoset(mtd)
	if err != nil {
		return Stats{}, invalid(err)
	}
	unary := !mtd.IsStreamingClient() && !mtd.IsStreamingServer()
	if in.checks.NeedsBody() && !unary {
		return Stats{}, invalid(fmt.Errorf("load: grpc: expect.json reads the response of a unary call; %s streams", mtd.FullName()))
	}

	paced := newInterruptible(ctx, opts.Pacer, opts.Hold, opts.Start)
	calls := newCallTracker(opts.Pacer, opts.Recorder, in.md, paced.intended, func() bool { return ctx.Err() != nil })
	calls.checks = in.checks
	var logged []runner.Option
	if unary && (in.checks.NeedsBody() || opts.Results != nil) {
		calls.awaiting = newAwaiting()
		logged = append(logged, runner.WithLogger(&responseLog{calls: calls, out: mtd.Output()}))
	}
	if opts.Results != nil {
		scheme := "http"
		if opts.TLS != nil {
			scheme = "https"
		}
		calls.results = opts.Results
		calls.origin = paced.origin
		calls.url = scheme + "://" + opts.Target + "/" + string(mtd.Parent().FullName()) + "/" + string(mtd.Name())
	}
	workers := maxInFlight
	if !opts.WaitAtCap {
		calls.slots = make(chan struct{}, maxInFlight)
		workers += dropWorkers
	}
	target, untrack := trackRun(calls, opts.Target)
	defer untrack()
	pacer := &ghzPacer{interruptible: paced, calls: calls, drain: timeout + time.Second}
	// ghz's Reporter keeps a detail of every call it is told of, up to a
	// million; skipping every call the schedule can make keeps it empty.
	// (It still sizes its buffer for them: min(calls, 1e6) details.)
	all := uint(math.Ceil(opts.Pacer.Hits(opts.Pacer.Duration()))) + 1
	cfg, err := runner.NewConfig(
		string(mtd.Parent().FullName())+"/"+string(mtd.Name()), target,
		append([]runner.Option{
			runner.WithProtosetBinary(set),
			runner.WithDataFromJSON(in.data),
			runner.WithMetadataProvider(calls.metadata),
			runner.WithDisableTemplateFuncs(true),
			runner.WithDisableTemplateData(true),
			runner.WithPacer(pacer),
			runner.WithConcurrency(uint(workers)),
			runner.WithWorkerTicker(newFixedWorkers(workers)),
			runner.WithTimeout(timeout),
			runner.WithClientLoadBalancing(lbName),
			runner.WithTotalRequests(all),
			runner.WithSkipFirst(all),
			runner.WithDurationStopAction("close"), // Stop closes the connections
		}, append(opts.TLS.ghzOptions(), logged...)...)...,
	)
	if err != nil {
		return Stats{}, fmt.Errorf("load: grpc: %w", err)
	}
	reqr, err := runner.NewRequester(cfg)
	if err != nil {
		return Stats{}, fmt.Errorf("load: grpc: data does not fit %s: %w", mtd.Input().FullName(), err)
	}
	pacer.stopGhz = func() { reqr.Stop(runner.ReasonCancel) }

	finished, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-ctx.Done():
			pacer.interrupt() // also when ghz waits for a free worker
		case <-finished:
		}
	}()
	began := cmp.Or(opts.Start, time.Now())
	_, runErr := reqr.Run()
	close(finished)
	<-watched
	if calls.awaiting != nil {
		calls.awaiting.flush()
	}
	calls.wait()

	st := Stats{
		Sent:        calls.started.Load() - calls.dropped.Load(),
		Dropped:     calls.dropped.Load(),
		Scheduled:   uint64(math.Ceil(opts.Pacer.Hits(time.Since(began)))),
		Interrupted: ctx.Err() != nil,
	}
	if runErr != nil {
		return st, fmt.Errorf("load: grpc: %w", runErr)
	}
	return st, nil
}

// findMethod checks that the target accepts connections and resolves the
// method, by server reflection if no proto or protoset is given.
func findMethod(ctx context.Context, opts GRPCOptions, creds credentials.TransportCredentials, timeout time.Duration) (protoreflect.MethodDescriptor, error) {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", opts.Target)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, opts.Target, err)
	}
	conn.Close()

	cc, err := grpc.NewClient("passthrough:///"+opts.Target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("load: grpc: %s: %w", opts.Target, err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return resolveMethod(ctx, opts, cc)
}

// checked is what GRPCOptions.check derives from the options.
type checked struct {
	data   string
	md     metadata.MD
	creds  credentials.TransportCredentials
	checks *check.Checks
}

// check reports every problem with the options at once.
func (o GRPCOptions) check() (checked, error) {
	var in checked
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("load: grpc: "+format, args...))
	}
	if host, port, err := net.SplitHostPort(o.Target); err != nil || host == "" || port == "" {
		bad("target %q is not host:port", o.Target)
	}
	if _, _, ok := splitCall(o.Call); !ok {
		bad("call %q is not pkg.Service/Method", o.Call)
	}
	if o.Pacer == nil {
		bad("no pacer")
	}
	if o.Recorder == nil {
		bad("no recorder")
	}
	if o.Proto != "" && o.Protoset != "" {
		bad("both a proto (%s) and a protoset (%s): name one", o.Proto, o.Protoset)
	}
	data, err := jsonData(o.Data)
	if err != nil {
		bad("data: %v", err)
	}
	in.data = data
	md, mdErrs := grpcMetadata(o.Metadata)
	errs = append(errs, mdErrs...)
	in.md = md
	if in.creds, err = o.TLS.credentials(); err != nil {
		bad("tls: %v", err)
	}
	if in.checks, err = check.Compile(o.Expect, true); err != nil {
		bad("%v", err)
	}
	return in, errors.Join(errs...)
}

// jsonData renders Data as the JSON text ghz takes.
func jsonData(d any) (string, error) {
	var b []byte
	switch v := d.(type) {
	case nil:
		return "{}", nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	case json.RawMessage:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return "", err
		}
	}
	s := strings.TrimSpace(string(b)) // ghz tells an array by its first byte
	if s == "" {
		return "{}", nil
	}
	if !json.Valid([]byte(s)) {
		return "", fmt.Errorf("not JSON: %.40q", s)
	}
	return s, nil
}

// fits checks that data (an object, or an array of them) reads as the
// message md in protobuf's JSON mapping, as ghz will read it.
func fits(data string, md protoreflect.MessageDescriptor) error {
	msgs := []json.RawMessage{json.RawMessage(data)}
	if strings.HasPrefix(data, "[") {
		if err := json.Unmarshal([]byte(data), &msgs); err != nil {
			return err
		}
	}
	for i, m := range msgs {
		if err := protojson.Unmarshal(m, dynamicpb.NewMessage(md)); err != nil {
			if len(msgs) > 1 {
				return fmt.Errorf("element %d: %w", i, err)
			}
			return err
		}
	}
	return nil
}

// grpcMetadata validates and normalises Metadata: keys as gRPC sends them
// (lower case), values printable unless the key ends in -bin.
func grpcMetadata(m map[string]string) (metadata.MD, []error) {
	md := make(metadata.MD, len(m))
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		key := strings.ToLower(k)
		var problem string
		switch {
		case !validMetadataKey(key):
			problem = "not a metadata key: use letters, digits, '-', '_' and '.'"
		case strings.HasPrefix(key, "grpc-"):
			problem = "grpc- keys are reserved for gRPC"
		case key == phaseKey || key == seqKey:
			problem = "resctl sets it on every call"
		case md[key] != nil:
			problem = "given twice"
		case !strings.HasSuffix(key, "-bin") && strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0:
			problem = "the value must be printable ASCII (binary values need a key ending in -bin)"
		}
		if problem != "" {
			errs = append(errs, fmt.Errorf("load: grpc: metadata %q: %s", k, problem))
			continue
		}
		md[key] = []string{v}
	}
	return md, errs
}

func validMetadataKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// credentials builds the transport credentials of the connection that
// resolves the method; ghz builds its own from ghzOptions.
func (t *GRPCTLS) credentials() (credentials.TransportCredentials, error) {
	if t == nil {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.SkipVerify}
	if (t.Cert == "") != (t.Key == "") {
		return nil, errors.New("a client certificate needs both Cert and Key")
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if t.CACert != "" {
		pem, err := os.ReadFile(t.CACert)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", t.CACert)
		}
	}
	return credentials.NewTLS(cfg), nil
}

func (t *GRPCTLS) ghzOptions() []runner.Option {
	if t == nil {
		return []runner.Option{runner.WithInsecure(true)}
	}
	return []runner.Option{
		runner.WithRootCertificate(t.CACert),
		runner.WithCertificate(t.Cert, t.Key),
		runner.WithServerNameOverride(t.ServerName),
		runner.WithSkipTLSVerify(t.SkipVerify),
	}
}

// ghzPacer paces ghz's requester by the schedule, as interruptible paces
// vegeta (it is one, with a Hold, and knows when each call was due). ghz
// calls Pace from one goroutine, with the calls handed to its workers so
// far, as vegeta counts hits.
//
// It also decides when ghz is stopped. Requester.Stop, which closes the
// connections and so cuts the calls in flight short, sends on a channel
// that Run closes on its way out: it may be called only while ghz is
// pacing, at most once. So an interrupt stops ghz only while it paces, and
// the last Pace, at the end of the schedule, waits for the calls in flight
// to end (or to be cut short by an interrupt) before it lets ghz go on.
type ghzPacer struct {
	*interruptible
	calls   *callTracker
	drain   time.Duration // the longest the last Pace waits for calls in flight
	stopGhz func()

	mu    sync.Mutex
	state int // 0 before the first Pace, 1 pacing, 2 done
}

// Pace implements ghz's load.Pacer.
func (g *ghzPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	g.mu.Lock()
	if g.state == 0 {
		g.state = 1
	}
	g.mu.Unlock()
	if _, stop := g.interruptible.Pace(elapsed, hits); !stop {
		return 0, false
	}
	if g.ctx.Err() == nil {
		t := time.NewTimer(g.drain)
		select {
		case <-g.calls.idle():
		case <-g.ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	g.interrupt()
	return 0, true
}

// interrupt ends the pacing; if the run is cancelled and ghz is pacing, it
// stops ghz.
func (g *ghzPacer) interrupt() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == 1 && g.ctx.Err() != nil {
		g.stopGhz()
	}
	g.state = 2
}

// fixedWorkers is a ghz WorkerTicker that starts n workers, once. ghz's
// own ConstWorkerTicker can have its channel closed by Finish before Run
// sent on it, when the pacer stops at once (an interrupted run), and the
// send then panics; Finish here waits for it.
type fixedWorkers struct {
	n    int
	c    chan ghzload.TickValue
	sent chan struct{}
}

func newFixedWorkers(n int) *fixedWorkers {
	return &fixedWorkers{n: n, c: make(chan ghzload.TickValue), sent: make(chan struct{})}
}

func (w *fixedWorkers) Ticker() <-chan ghzload.TickValue { return w.c }

func (w *fixedWorkers) Run() {
	w.c <- ghzload.TickValue{Delta: w.n, Done: true}
	close(w.sent)
}

func (w *fixedWorkers) Finish() {
	<-w.sent
	close(w.c)
}

var (
	_ ghzload.Pacer        = (*ghzPacer)(nil)
	_ ghzload.WorkerTicker = (*fixedWorkers)(nil)
)
