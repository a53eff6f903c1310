package load_test

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/resctl/resctl/check"
	"github.com/resctl/resctl/internal/demo"
	"github.com/resctl/resctl/internal/demo/demopb"
	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/record"
)

// demoProto is the demo target's service definition.
var demoProto = filepath.Join("..", "testdata", "protos", "demo.proto")

// startDemo runs the demo target (HTTP and gRPC on one port) for the test.
func startDemo(t *testing.T) *demo.Running {
	t.Helper()
	r, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// runGRPC calls load.RunGRPC, failing the test if it does not return
// within hangGuard.
func runGRPC(t *testing.T, ctx context.Context, opts load.GRPCOptions) (load.Stats, error) {
	t.Helper()
	type result struct {
		st  load.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := load.RunGRPC(ctx, opts)
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		return r.st, r.err
	case <-time.After(hangGuard):
		t.Fatalf("RunGRPC did not return within %v", hangGuard)
		return load.Stats{}, nil
	}
}

// writeProtoset writes the demo's descriptors, imports first, as protoc
// --include_imports --descriptor_set_out would.
func writeProtoset(t *testing.T) string {
	t.Helper()
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(timestamppb.File_google_protobuf_timestamp_proto),
		protodesc.ToFileDescriptorProto(demopb.File_demo_proto),
	}}
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "demo.protoset")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunGRPC_Results(t *testing.T) {
	target := startDemo(t).Addr()
	protoset := writeProtoset(t)
	tests := []struct {
		name     string
		call     string
		data     any
		proto    string
		protoset string
		want     record.Counts
	}{
		{
			name: "unary",
			call: "resctl.demo.v1.Orders/GetOrder",
			data: `{"id": 7}`,
			want: record.Counts{Requests: 10, Successes: 10, Codes: map[int]uint64{200: 10}, GRPCCodes: map[string]uint64{"OK": 10}},
		},
		{
			name: "unary error status",
			call: "resctl.demo.v1.Orders/GetOrder",
			data: map[string]any{"id": 0},
			want: record.Counts{Requests: 10, Errors: 10, Codes: map[int]uint64{404: 10}, GRPCCodes: map[string]uint64{"NotFound": 10}, Reasons: map[string]uint64{"status: NotFound": 10}},
		},
		{
			name:  "server streaming, from the proto",
			call:  "resctl.demo.v1.Orders.ListOrders",
			data:  `{"limit": 3}`,
			proto: demoProto,
			want:  record.Counts{Requests: 10, Successes: 10, Codes: map[int]uint64{200: 10}, GRPCCodes: map[string]uint64{"OK": 10}},
		},
		{
			name:     "unary, from a protoset",
			call:     "resctl.demo.v1.Orders/GetOrder",
			protoset: protoset,
			want:     record.Counts{Requests: 10, Errors: 10, Codes: map[int]uint64{404: 10}, GRPCCodes: map[string]uint64{"NotFound": 10}, Reasons: map[string]uint64{"status: NotFound": 10}},
		},
		{
			name: "server streaming error status",
			call: "resctl.demo.v1.Orders/ListOrders",
			data: `{"limit": 1000}`,
			want: record.Counts{Requests: 10, Errors: 10, Codes: map[int]uint64{400: 10}, GRPCCodes: map[string]uint64{"InvalidArgument": 10}, Reasons: map[string]uint64{"status: InvalidArgument": 10}},
		},
		{
			name: "client streaming",
			call: "resctl.demo.v1.Orders/RecordOrders",
			data: `[{"id": 1, "items": [{"sku": "A", "quantity": 1, "price_cents": 5}]}, {"id": 2}]`,
			want: record.Counts{Requests: 10, Successes: 10, Codes: map[int]uint64{200: 10}, GRPCCodes: map[string]uint64{"OK": 10}},
		},
		{
			name: "bidirectional streaming",
			call: "/resctl.demo.v1.Orders/Track",
			data: []map[string]any{{"order_id": 1}, {"order_id": 2}},
			want: record.Counts{Requests: 10, Successes: 10, Codes: map[int]uint64{200: 10}, GRPCCodes: map[string]uint64{"OK": 10}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := drained(load.Step{Name: "only", Duration: 500 * time.Millisecond, Rate: 20})
			rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
			st, err := runGRPC(t, t.Context(), load.GRPCOptions{
				Target:   target,
				Call:     tt.call,
				Data:     tt.data,
				Proto:    tt.proto,
				Protoset: tt.protoset,
				Pacer:    load.NewPacer(steps),
				Timeout:  5 * time.Second,
				Recorder: rec,
			})
			if err != nil {
				t.Fatalf("RunGRPC: %v", err)
			}
			if st.Interrupted || st.Sent != tt.want.Requests || st.Scheduled != tt.want.Requests || st.Dropped != 0 {
				t.Errorf("Stats = %+v, want %d scheduled and sent, not interrupted", st, tt.want.Requests)
			}
			snap := rec.Snapshot()
			if got := snap.Total.Counts; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("recorded %+v, want %+v", got, tt.want)
			}
			if snap.Total.Latency.Max <= 0 || snap.Total.Latency.Max > 5*time.Second {
				t.Errorf("max latency %v, want a call's duration", snap.Total.Latency.Max)
			}
		})
	}
}

// Saved results are vegeta's: each call a POST to its HTTP/2 path, its
// status mapped to HTTP's, drops among them.
func TestRunGRPC_ResultsFile(t *testing.T) {
	addr, _ := startOrders(t, func(ctx context.Context, req *demopb.GetOrderRequest) (*demopb.Order, error) {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
		return nil, status.Error(codes.NotFound, "no such order")
	})
	path := filepath.Join(t.TempDir(), "results.bin")
	rf, err := load.CreateResultsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	steps := []load.Step{{Name: "only", Duration: 500 * time.Millisecond, Rate: 40}}
	st, err := runGRPC(t, t.Context(), load.GRPCOptions{
		Target: addr, Call: "resctl.demo.v1.Orders/GetOrder",
		Pacer:       load.NewPacer(drained(steps...)),
		Recorder:    record.NewRecorder(time.Now(), spans(steps), time.Second),
		Results:     rf,
		MaxInFlight: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	codes := map[uint16]int{}
	for _, res := range decodeResults(t, path) {
		codes[res.Code]++
		if want := "http://" + addr + "/resctl.demo.v1.Orders/GetOrder"; res.Method != http.MethodPost || res.URL != want || res.Error == "" {
			t.Errorf("saved %+v, want a failed POST to %s", res, want)
		}
	}
	if codes[404] != int(st.Sent) || codes[0] != int(st.Dropped) || st.Dropped == 0 || len(codes) != 2 {
		t.Errorf("decoded codes %v, want %d × 404 and %d drops (code 0)", codes, st.Sent, st.Dropped)
	}
}

// orders is a gRPC Orders service for tests: get answers GetOrder.
type orders struct {
	demopb.UnimplementedOrdersServer
	get func(context.Context, *demopb.GetOrderRequest) (*demopb.Order, error)
}

func (o *orders) GetOrder(ctx context.Context, req *demopb.GetOrderRequest) (*demopb.Order, error) {
	return o.get(ctx, req)
}

// startOrders serves get as Orders.GetOrder, with reflection, on loopback.
func startOrders(t *testing.T, get func(context.Context, *demopb.GetOrderRequest) (*demopb.Order, error)) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	demopb.RegisterOrdersServer(srv, &orders{get: get})
	reflection.Register(srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	stop = sync.OnceFunc(func() {
		srv.Stop()
		<-served
	})
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// Every call carries its phase and sequence number, as HTTP requests carry
// X-Resctl-Phase and X-Resctl-Seq, and is counted in the phase the schedule
// put it in.
func TestRunGRPC_PhasesAndMetadata(t *testing.T) {
	type seen struct {
		phase, custom string
		seq           uint64
	}
	var mu sync.Mutex
	var got []seen
	addr, _ := startOrders(t, func(ctx context.Context, req *demopb.GetOrderRequest) (*demopb.Order, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		seq, err := strconv.ParseUint(strings.Join(md.Get("x-resctl-seq"), ","), 10, 64)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "x-resctl-seq %q", md.Get("x-resctl-seq"))
		}
		mu.Lock()
		got = append(got, seen{strings.Join(md.Get("x-resctl-phase"), ","), strings.Join(md.Get("x-tenant"), ","), seq})
		mu.Unlock()
		return &demopb.Order{Id: req.GetId()}, nil
	})
	steps := drained(
		load.Step{Name: "baseline", Duration: 400 * time.Millisecond, Rate: 50},
		load.Step{Name: "fault", Duration: 200 * time.Millisecond, Rate: 100},
		load.Step{Name: "recovery", Duration: 400 * time.Millisecond, Rate: 25},
	)
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	st, err := runGRPC(t, t.Context(), load.GRPCOptions{
		Target:   addr,
		Call:     "resctl.demo.v1.Orders/GetOrder",
		Data:     `{"id": 1}`,
		Metadata: map[string]string{"X-Tenant": "acme"},
		Pacer:    load.NewPacer(steps),
		Recorder: rec,
	})
	if err != nil {
		t.Fatalf("RunGRPC: %v", err)
	}
	if st.Sent != 50 {
		t.Fatalf("sent %d calls, want 50", st.Sent)
	}
	var perPhase []uint64
	for _, ph := range rec.Snapshot().PhaseStats {
		perPhase = append(perPhase, ph.Successes)
	}
	if want := []uint64{20, 20, 10, 0}; !slices.Equal(perPhase, want) {
		t.Errorf("successes per phase = %v, want %v", perPhase, want)
	}

	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(got, func(a, b seen) int { return int(a.seq) - int(b.seq) })
	for i, s := range got {
		want := "baseline"
		switch {
		case i >= 40:
			want = "recovery"
		case i >= 20:
			want = "fault"
		}
		if s.seq != uint64(i) || s.phase != want || s.custom != "acme" {
			t.Fatalf("call %d arrived as %+v, want seq %d, phase %q, x-tenant acme", i, s, i, want)
		}
	}
}

// Bad input is reported before any call is made.
func TestRunGRPC_BadInput(t *testing.T) {
	r := startDemo(t)
	target := r.Addr()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	broken := write("broken.proto", "syntax = \"proto3\";\npackage x;\nservice S {\n  rpc M(Nope) returns (Nope)\n}\n")
	other := write("other.proto", "syntax = \"proto3\";\npackage x;\nmessage E {}\nservice S { rpc M(E) returns (E); }\n")
	garbage := write("garbage.protoset", "not a descriptor set")
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()

	good := load.GRPCOptions{Target: target, Call: "resctl.demo.v1.Orders/GetOrder", Data: `{"id": 1}`}
	tests := []struct {
		name   string
		change func(*load.GRPCOptions)
		want   []string // every one appears in the error
		is     error
	}{
		{"unknown method", func(o *load.GRPCOptions) { o.Call = "resctl.demo.v1.Orders/Nope" },
			[]string{`no method "Nope"`, "GetOrder, ListOrders, RecordOrders, Track"}, nil},
		{"unknown method in the proto", func(o *load.GRPCOptions) { o.Call = "resctl.demo.v1.Orders/Nope"; o.Proto = demoProto },
			[]string{`no method "Nope"`}, nil},
		{"unknown service", func(o *load.GRPCOptions) { o.Call = "resctl.demo.v1.Nope/GetOrder" },
			[]string{`no service "resctl.demo.v1.Nope"`, "resctl.demo.v1.Orders"}, nil},
		{"service not in the proto", func(o *load.GRPCOptions) { o.Proto = other },
			[]string{`defines no service "resctl.demo.v1.Orders"`, "(it has x.S)"}, nil},
		{"proto that does not parse", func(o *load.GRPCOptions) { o.Proto = broken },
			[]string{"parse " + broken, "broken.proto:5:1: syntax error"}, nil},
		{"missing proto", func(o *load.GRPCOptions) { o.Proto = filepath.Join(dir, "none.proto") },
			[]string{"none.proto"}, nil},
		{"protoset that is not one", func(o *load.GRPCOptions) { o.Protoset = garbage },
			[]string{"read protoset " + garbage}, nil},
		{"data of another message", func(o *load.GRPCOptions) { o.Data = `{"order_id": 1}` },
			[]string{"data does not fit resctl.demo.v1.GetOrderRequest", "order_id"}, nil},
		{"data of the wrong type", func(o *load.GRPCOptions) { o.Data = map[string]any{"id": "seven"} },
			[]string{"data does not fit resctl.demo.v1.GetOrderRequest"}, nil},
		{"data that is not JSON", func(o *load.GRPCOptions) { o.Data = `{"id": ` },
			[]string{"data: not JSON"}, nil},
		{"unreachable target", func(o *load.GRPCOptions) { o.Target = closed },
			[]string{"target unreachable", closed}, load.ErrUnreachable},
		{"malformed metadata", func(o *load.GRPCOptions) {
			o.Metadata = map[string]string{"bad key": "v", "grpc-timeout": "1S", "x-resctl-seq": "1", "x-ok": "line\nbreak", "x-ok-bin": "\x00\x01", "x-fine": "yes"}
		}, []string{`metadata "bad key": not a metadata key`, `metadata "grpc-timeout": grpc- keys are reserved`,
			`metadata "x-resctl-seq": resctl sets it`, `metadata "x-ok": the value must be printable`}, nil},
		{"target that is not host:port", func(o *load.GRPCOptions) { o.Target = "localhost" },
			[]string{`target "localhost" is not host:port`}, nil},
		{"call that is not a method", func(o *load.GRPCOptions) { o.Call = "GetOrder" },
			[]string{`call "GetOrder" is not pkg.Service/Method`}, nil},
		{"proto and protoset", func(o *load.GRPCOptions) { o.Proto, o.Protoset = demoProto, garbage },
			[]string{"both a proto"}, nil},
		{"client certificate without key", func(o *load.GRPCOptions) { o.TLS = &load.GRPCTLS{Cert: "c.pem"} },
			[]string{"tls: a client certificate needs both Cert and Key"}, nil},
		{"checks of HTTP responses", func(o *load.GRPCOptions) { o.Expect = &check.Spec{BodyContains: "x"} },
			[]string{"expect.body_contains: checks HTTP responses"}, nil},
		{"a field of a streamed response", func(o *load.GRPCOptions) {
			o.Call, o.Data = "resctl.demo.v1.Orders/ListOrders", `{"limit": 1}`
			o.Expect = &check.Spec{JSON: map[string]check.Value{"id": {JSON: "1"}}}
		}, []string{"expect.json reads the response of a unary call; resctl.demo.v1.Orders.ListOrders streams"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := good
			tt.change(&opts)
			steps := []load.Step{{Name: "only", Duration: time.Second, Rate: 10}}
			opts.Pacer = load.NewPacer(steps)
			opts.Recorder = record.NewRecorder(time.Now(), spans(steps), time.Second)
			st, err := runGRPC(t, t.Context(), opts)
			if err == nil {
				t.Fatal("RunGRPC succeeded, want an error")
			}
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			// Everything but an unreachable target is a mistake in the
			// options: ErrInvalid, which the CLI turns into exit 2.
			is := cmp.Or(tt.is, load.ErrInvalid)
			if !errors.Is(err, is) {
				t.Errorf("error %v is not %v", err, is)
			}
			if tt.is == load.ErrUnreachable && errors.Is(err, load.ErrInvalid) {
				t.Errorf("an unreachable target is ErrInvalid: %v", err)
			}
			if st.Sent != 0 || opts.Recorder.Snapshot().Total.Requests != 0 {
				t.Errorf("load was sent: %+v", st)
			}
		})
	}
	for _, name := range []string{"GetOrder", "ListOrders", "RecordOrders", "Track"} {
		if n := demoCalls(t, r, "resctl.demo.v1.Orders/"+name); n != 0 {
			t.Errorf("the target saw %d %s calls", n, name)
		}
	}

	var none load.GRPCOptions
	_, err := load.RunGRPC(t.Context(), none)
	for _, w := range []string{"target", "call", "no pacer", "no recorder"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("RunGRPC with no options: error %v does not mention %s", err, w)
		}
	}
}

// demoCalls is how many calls of method the demo target counted.
func demoCalls(t *testing.T, r *demo.Running, method string) int {
	t.Helper()
	resp, err := http.Get(r.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "demo_grpc_requests_total{") && strings.Contains(line, `method="`+method+`"`) {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[len(f)-1])
			total += n
		}
	}
	return total
}

func TestRunGRPC_Timeout(t *testing.T) {
	addr, _ := startOrders(t, func(ctx context.Context, _ *demopb.GetOrderRequest) (*demopb.Order, error) {
		<-ctx.Done() // never answers; the client gives up
		return nil, ctx.Err()
	})
	steps := drained(load.Step{Name: "only", Duration: 100 * time.Millisecond, Rate: 20})
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	if _, err := runGRPC(t, t.Context(), load.GRPCOptions{
		Target: addr, Call: "resctl.demo.v1.Orders/GetOrder",
		Pacer: load.NewPacer(steps), Timeout: 50 * time.Millisecond, Recorder: rec,
	}); err != nil {
		t.Fatalf("RunGRPC: %v", err)
	}
	want := record.Counts{Requests: 2, Errors: 2, Codes: map[int]uint64{504: 2}, GRPCCodes: map[string]uint64{"DeadlineExceeded": 2}, Reasons: map[string]uint64{"transport: timeout": 2}}
	if got := rec.Snapshot().Total.Counts; !reflect.DeepEqual(got, want) {
		t.Errorf("timed-out calls recorded as %+v, want %+v", got, want)
	}
}

// A target that goes away during the run fails the calls after it: each
// is recorded, UNAVAILABLE, though it never reached a server. The target
// answers the first calls and goes away on the next one, however fast or
// slow the machine sends them.
func TestRunGRPC_TargetGoesAway(t *testing.T) {
	const answered = 5
	var calls atomic.Int32
	var stop func()
	addr, stop := startOrders(t, func(ctx context.Context, _ *demopb.GetOrderRequest) (*demopb.Order, error) {
		if calls.Add(1) <= answered {
			return &demopb.Order{}, nil
		}
		go stop() // cancels this call and every later one
		<-ctx.Done()
		return nil, ctx.Err()
	})
	steps := drained(load.Step{Name: "only", Duration: time.Second, Rate: 20})
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	st, err := runGRPC(t, t.Context(), load.GRPCOptions{
		Target: addr, Call: "resctl.demo.v1.Orders/GetOrder",
		Pacer: load.NewPacer(steps), Timeout: 5 * time.Second, Recorder: rec,
	})
	if err != nil {
		t.Fatalf("RunGRPC: %v", err)
	}
	c := rec.Snapshot().Total.Counts
	if st.Sent != 20 || c.Requests != 20 {
		t.Fatalf("sent %d, recorded %d; want every one of 20 calls recorded", st.Sent, c.Requests)
	}
	if c.Codes[200] != answered || c.Codes[200]+c.Codes[503] != 20 || c.GRPCCodes["Unavailable"] != c.Codes[503] || c.Codes[503] == 0 {
		t.Errorf("recorded %+v, want %d OK and the rest UNAVAILABLE (503)", c, answered)
	}
}

// A target that accepts connections but never speaks HTTP/2: calls wait
// for a connection until their deadline, and each is recorded as
// DEADLINE_EXCEEDED, though none reached a server.
func TestRunGRPC_TargetNeverAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	conns.Add(1)
	go func() {
		defer conns.Done()
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
	})
	steps := drained(load.Step{Name: "only", Duration: 250 * time.Millisecond, Rate: 20})
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	st, err := runGRPC(t, t.Context(), load.GRPCOptions{
		Target: ln.Addr().String(), Call: "resctl.demo.v1.Orders/GetOrder", Proto: demoProto,
		Pacer: load.NewPacer(steps), Timeout: 100 * time.Millisecond, Recorder: rec,
	})
	if err != nil {
		t.Fatalf("RunGRPC: %v", err)
	}
	want := record.Counts{Requests: 5, Errors: 5, Codes: map[int]uint64{504: 5}, GRPCCodes: map[string]uint64{"DeadlineExceeded": 5}, Reasons: map[string]uint64{"transport: timeout": 5}}
	if got := rec.Snapshot().Total.Counts; st.Sent != 5 || !reflect.DeepEqual(got, want) {
		t.Errorf("sent %d, recorded %+v; want 5 sent, %+v", st.Sent, got, want)
	}
}

func TestRunGRPC_Cancel(t *testing.T) {
	const answered = 5
	var arrived atomic.Int64
	blocked := make(chan struct{}, 100)
	addr, _ := startOrders(t, func(ctx context.Context, _ *demopb.GetOrderRequest) (*demopb.Order, error) {
		if arrived.Add(1) <= answered {
			return &demopb.Order{}, nil
		}
		select {
		case blocked <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	steps := []load.Step{{Name: "only", Duration: 10 * time.Second, Rate: 50}}
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		st  load.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := load.RunGRPC(ctx, load.GRPCOptions{
			Target: addr, Call: "resctl.demo.v1.Orders/GetOrder",
			Pacer: load.NewPacer(steps), Recorder: rec,
		})
		done <- result{st, err}
	}()

	guard := time.After(hangGuard)
	for range 2 {
		select {
		case <-blocked:
		case <-guard:
			t.Fatal("calls never reached the blocking handler")
		}
	}
	for rec.Snapshot().Total.Requests < answered {
		select {
		case <-guard:
			t.Fatalf("only %d answered calls recorded", rec.Snapshot().Total.Requests)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	var r result
	select {
	case r = <-done:
	case <-guard:
		t.Fatalf("RunGRPC did not return within %v of being cancelled", hangGuard)
	}
	if r.err != nil {
		t.Fatalf("RunGRPC: %v", r.err)
	}
	if !r.st.Interrupted || r.st.Sent < answered+2 || r.st.Sent >= 500 {
		t.Errorf("Stats = %+v, want interrupted after %d or more calls, well before the schedule's 500", r.st, answered+2)
	}
	want := record.Counts{Requests: answered, Successes: answered, Codes: map[int]uint64{200: answered}, GRPCCodes: map[string]uint64{"OK": answered}}
	if got := rec.Snapshot().Total.Counts; !reflect.DeepEqual(got, want) {
		t.Errorf("recorded %+v, want only the answered calls %+v", got, want)
	}
}

// A run at a low rate is waiting for its next call most of the time; an
// interrupt ends that wait.
func TestRunGRPC_CancelDuringLongWait(t *testing.T) {
	var calls atomic.Int64
	addr, _ := startOrders(t, func(context.Context, *demopb.GetOrderRequest) (*demopb.Order, error) {
		calls.Add(1)
		return &demopb.Order{}, nil
	})
	steps := []load.Step{{Name: "slow", Duration: time.Hour, Rate: 1.0 / 60}}
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for rec.Snapshot().Total.Requests < 1 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	st, err := runGRPC(t, ctx, load.GRPCOptions{
		Target: addr, Call: "resctl.demo.v1.Orders/GetOrder",
		Pacer: load.NewPacer(steps), Recorder: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 1 || calls.Load() != 1 || !st.Interrupted {
		t.Errorf("sent %d, server saw %d, interrupted %v; want 1, 1, true", st.Sent, calls.Load(), st.Interrupted)
	}
}

func TestRunGRPC_MaxInFlight(t *testing.T) {
	const limit = 3
	var arrived, inFlight, peak atomic.Int64
	addr, _ := startOrders(t, func(ctx context.Context, _ *demopb.GetOrderRequest) (*demopb.Order, error) {
		arrived.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	checkCapHolds(t, limit, arrived.Load, peak.Load, "calls", func(ctx context.Context) load.Stats {
		st, _ := load.RunGRPC(ctx, load.GRPCOptions{
			Target: addr, Call: "resctl.demo.v1.Orders/GetOrder",
			Pacer:       load.NewPacer(capSteps),
			Recorder:    record.NewRecorder(time.Now(), spans(capSteps), time.Second),
			MaxInFlight: limit,
		})
		return st
	})
}

// At the cap a call is dropped, unsent, and counted as a failure and as
// dropped; with WaitAtCap the schedule waits instead, and the response
// times, from when each call was due, show it.
func TestRunGRPC_AtTheCap(t *testing.T) {
	addr, _ := startOrders(t, func(ctx context.Context, _ *demopb.GetOrderRequest) (*demopb.Order, error) {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
		return &demopb.Order{}, nil
	})
	steps := []load.Step{{Name: "only", Duration: time.Second, Rate: 40}}
	for _, wait := range []bool{false, true} {
		t.Run(map[bool]string{false: "drop", true: "wait"}[wait], func(t *testing.T) {
			rec := record.NewRecorder(time.Now(), spans(steps), 10*time.Second)
			st, err := runGRPC(t, t.Context(), load.GRPCOptions{
				Target: addr, Call: "resctl.demo.v1.Orders/GetOrder",
				Pacer:       load.NewPacer(drained(steps...)),
				Recorder:    rec,
				MaxInFlight: 2,
				WaitAtCap:   wait,
			})
			if err != nil {
				t.Fatal(err)
			}
			ph := rec.Snapshot().PhaseStats[0]
			if ph.Requests != 40 || st.Sent+st.Dropped != 40 {
				t.Fatalf("recorded %d, sent %d + dropped %d; want the 40 scheduled", ph.Requests, st.Sent, st.Dropped)
			}
			if ph.Dropped != st.Dropped || ph.Errors != ph.Dropped || ph.Successes != st.Sent {
				t.Errorf("phase %+v, Stats %+v: every drop is an error, every call sent a success", ph.Counts, st)
			}
			checkAtCap(t, st, ph, wait)
		})
	}
}

// Hold keeps a step's calls back until the gate opens, as in Run.
func TestRunGRPC_Hold(t *testing.T) {
	var calls atomic.Int64
	addr, _ := startOrders(t, func(context.Context, *demopb.GetOrderRequest) (*demopb.Order, error) {
		calls.Add(1)
		return &demopb.Order{}, nil
	})
	steps := drained(
		load.Step{Name: "first", Duration: 100 * time.Millisecond, Rate: 50},
		load.Step{Name: "second", Duration: 100 * time.Millisecond, Rate: 50},
	)
	gate := make(chan struct{})
	asked := make(chan int, 10)
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := load.RunGRPC(t.Context(), load.GRPCOptions{
			Target: addr, Call: "resctl.demo.v1.Orders/GetOrder",
			Pacer: load.NewPacer(steps), Recorder: rec,
			Hold: func(step int) <-chan struct{} {
				asked <- step
				return gate
			},
		})
		done <- err
	}()
	if step := <-asked; step != 1 {
		t.Fatalf("Hold asked for step %d first, want 1", step)
	}
	for rec.Snapshot().Total.Requests < 5 {
		time.Sleep(time.Millisecond)
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("%d calls before the gate opened, want the first step's 5", n)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 10 {
		t.Errorf("%d calls in all, want 10", n)
	}
}

// RunGRPC stops everything it and ghz started while the target is still
// up. ghz's Requester leaves nothing behind once Run has returned.
func TestRunGRPC_LeavesNoGoroutines(t *testing.T) {
	target := startDemo(t).Addr()
	before := goleak.IgnoreCurrent()
	steps := []load.Step{{Duration: 200 * time.Millisecond, Rate: 50}}
	for call, data := range map[string]string{
		"resctl.demo.v1.Orders/GetOrder": `{"id": 1}`,
		"resctl.demo.v1.Orders/Track":    `[{"order_id": 1}]`,
	} {
		if _, err := runGRPC(t, t.Context(), load.GRPCOptions{
			Target: target, Call: call, Data: data,
			Pacer:    load.NewPacer(steps),
			Recorder: record.NewRecorder(time.Now(), spans(steps), time.Second),
		}); err != nil {
			t.Fatalf("RunGRPC %s: %v", call, err)
		}
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("goroutines left running after RunGRPC returned: %v", err)
	}
}

func TestHTTPStatusFromCode(t *testing.T) {
	tests := []struct {
		code codes.Code
		want int
	}{
		{codes.OK, 200},
		{codes.Canceled, 499},
		{codes.Unknown, 500},
		{codes.InvalidArgument, 400},
		{codes.DeadlineExceeded, 504},
		{codes.NotFound, 404},
		{codes.AlreadyExists, 409},
		{codes.PermissionDenied, 403},
		{codes.ResourceExhausted, 429},
		{codes.FailedPrecondition, 400},
		{codes.Aborted, 409},
		{codes.OutOfRange, 400},
		{codes.Unimplemented, 501},
		{codes.Internal, 500},
		{codes.Unavailable, 503},
		{codes.DataLoss, 500},
		{codes.Unauthenticated, 401},
		{codes.Code(99), 500},
	}
	for _, tt := range tests {
		if got := load.HTTPStatusFromCode(tt.code); got != tt.want {
			t.Errorf("HTTPStatusFromCode(%v) = %d, want %d", tt.code, got, tt.want)
		}
	}
}
