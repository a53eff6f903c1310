package harness_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// Metadata keys that ask the status service for metadata of its own.
const (
	headerMDKey  = "x-want-header-md"
	trailerMDKey = "x-want-trailer-md"
)

// What the status service sends when asked: custom and binary values,
// one key with two values.
var (
	richHeader  = metadata.Pairs("x-custom", "plain value", "x-multi", "a", "x-multi", "b", "x-raw-bin", "\x00\x01\xfe\xff")
	richTrailer = metadata.Pairs("x-trail", "t: 100%", "x-trail-bin", "\xff\x00\n")
)

// statusService answers with exactly the status a request asks for,
// with details on every error, and the metadata the call's own metadata
// ask for. A call that sends no message and set no header metadata is
// answered trailers-only by grpc-go: the case the proxy once split.
type statusService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (statusService) metadata(ctx context.Context, setHeader, setTrailer func(metadata.MD) error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get(headerMDKey)) > 0 {
		_ = setHeader(richHeader)
	}
	if len(md.Get(trailerMDKey)) > 0 {
		_ = setTrailer(richTrailer)
	}
}

// withDetails is the status a request asks for, with details attached
// when it is an error.
func withDetails(es *testgrpc.EchoStatus) error {
	if es == nil || es.Code == 0 {
		return nil
	}
	s, err := status.New(codes.Code(es.Code), es.Message).WithDetails(&testgrpc.Payload{Body: []byte("detail \x00\xff")})
	if err != nil {
		return err
	}
	return s.Err()
}

func (s statusService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s.metadata(ctx, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) }, func(md metadata.MD) error { return grpc.SetTrailer(ctx, md) })
	if err := withDetails(req.ResponseStatus); err != nil {
		return nil, err
	}
	return &testgrpc.SimpleResponse{Payload: payload(req.ResponseSize)}, nil
}

func (s statusService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	s.metadata(stream.Context(), stream.SetHeader, func(md metadata.MD) error { stream.SetTrailer(md); return nil })
	for _, p := range req.ResponseParameters {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(p.Size)}); err != nil {
			return err
		}
	}
	if len(metadata.ValueFromIncomingContext(stream.Context(), hangKey)) > 0 {
		<-stream.Context().Done()
		return stream.Context().Err()
	}
	return withDetails(req.ResponseStatus)
}

// callEnd is everything a client can tell of how a call ended.
type callEnd struct {
	code             codes.Code
	msg              string
	details          string // the status's details, serialized
	header, trailer  metadata.MD
	messages, nbytes int
}

func (s callEnd) String() string {
	return fmt.Sprintf("%v %q details=%q header=%v trailer=%v messages=%d bytes=%d",
		s.code, s.msg, s.details, map[string][]string(s.header), map[string][]string(s.trailer), s.messages, s.nbytes)
}

func callEndOf(err error, header, trailer metadata.MD, messages, nbytes int) callEnd {
	st := status.Convert(err)
	var details []byte
	if ds := st.Proto().GetDetails(); len(ds) > 0 {
		for _, d := range ds {
			b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(d)
			details = append(details, b...)
		}
	}
	norm := func(md metadata.MD) metadata.MD {
		if len(md) == 0 {
			return nil
		}
		return md
	}
	return callEnd{code: st.Code(), msg: st.Message(), details: string(details), header: norm(header), trailer: norm(trailer), messages: messages, nbytes: nbytes}
}

// statusCall is one call of the pass-through test, made on conn.
type statusCall func(ctx context.Context, conn *grpc.ClientConn) callEnd

func invoke(method string) statusCall {
	return func(ctx context.Context, conn *grpc.ClientConn) callEnd {
		var h, tr metadata.MD
		err := conn.Invoke(ctx, method, &testgrpc.Empty{}, &testgrpc.Empty{}, grpc.Header(&h), grpc.Trailer(&tr))
		return callEndOf(err, h, tr, 0, 0)
	}
}

func unaryStatus(code codes.Code, msg string, md ...string) statusCall {
	return func(ctx context.Context, conn *grpc.ClientConn) callEnd {
		var h, tr metadata.MD
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
		resp, err := testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 64, ResponseStatus: &testgrpc.EchoStatus{Code: int32(code), Message: msg}}, grpc.Header(&h), grpc.Trailer(&tr))
		n := 0
		if err == nil {
			n = 1
		}
		return callEndOf(err, h, tr, n, len(resp.GetPayload().GetBody()))
	}
}

// streamStatus asks for n messages of size bytes, then the status; with
// hangKey in md the upstream waits for the call's end instead, and
// cancel, when set, ends the call once the first message is in.
func streamStatus(n int, size int32, code codes.Code, msg string, cancelAfterFirst bool, md ...string) statusCall {
	return func(ctx context.Context, conn *grpc.ClientConn) callEnd {
		ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, md...))
		defer cancel()
		req := &testgrpc.StreamingOutputCallRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(code), Message: msg}}
		for range n {
			req.ResponseParameters = append(req.ResponseParameters, &testgrpc.ResponseParameters{Size: size})
		}
		stream, err := testgrpc.NewTestServiceClient(conn).StreamingOutputCall(ctx, req)
		if err != nil {
			return callEndOf(err, nil, nil, 0, 0)
		}
		messages, nbytes := 0, 0
		for {
			m, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil // the stream ended with status OK
				}
				h, _ := stream.Header()
				return callEndOf(err, h, stream.Trailer(), messages, nbytes)
			}
			messages++
			nbytes += len(m.GetPayload().GetBody())
			if cancelAfterFirst && messages == 1 {
				cancel()
			}
		}
	}
}

// withDeadline bounds each call of c by d.
func withDeadline(d time.Duration, c statusCall) statusCall {
	return func(ctx context.Context, conn *grpc.ClientConn) callEnd {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return c(ctx, conn)
	}
}

// trailersOnlyCalls is how often each trailers-only case is made: the
// split this test guards against showed in 2% to 30% of such calls.
const trailersOnlyCalls = 2000

// repeat makes call n times on conn, a few at a time, and reports the
// calls whose end ok refuses, with the first few.
func repeat(t *testing.T, conn *grpc.ClientConn, call statusCall, n int, ok func(callEnd) bool, want string) {
	t.Helper()
	var (
		next, bad atomic.Int64
		mu        sync.Mutex
		firsts    []string
		wg        sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
				got := call(ctx, conn)
				cancel()
				if ok(got) || bad.Add(1) > 3 {
					continue
				}
				mu.Lock()
				firsts = append(firsts, got.String())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if b := bad.Load(); b > 0 {
		t.Errorf("%d of %d calls ended otherwise\nwant %s\ngot  %s", b, n, want, strings.Join(firsts, "\n     "))
	}
}

// TestGRPCProxy_StatusPassThrough: whatever a grpc-go server answers —
// trailers-only errors (an unknown service or method, an unimplemented
// one, a status with an encoded message, details and trailer metadata,
// an empty stream), errors after headers, a stream of a thousand
// messages, binary and custom metadata — a grpc-go client sees exactly
// the same through the proxy as directly, every time; deadlines and
// cancellations end with the same code.
func TestGRPCProxy_StatusPassThrough(t *testing.T) {
	up := startGRPCUpstream(t, statusService{})
	direct := dialConn(t, up)
	proxied := dialConn(t, startGRPCProxy(t, up, nil).Addr())
	const oddMessage = "50% done: naïve ✓ — 日本語\ttab\nnewline %41 ~"
	tests := []struct {
		name     string
		call     statusCall
		n        int
		codeOnly bool // the client makes the status itself: its message is its own
	}{
		{name: "unknown service", call: invoke("/resctl.test.Nowhere/Call"), n: trailersOnlyCalls},
		{name: "unknown method", call: invoke("/grpc.testing.TestService/NoSuchCall"), n: trailersOnlyCalls},
		{name: "unimplemented method", call: invoke("/grpc.testing.TestService/EmptyCall"), n: trailersOnlyCalls},
		{name: "status with an encoded message, details and trailers", call: unaryStatus(codes.FailedPrecondition, oddMessage, trailerMDKey, "1"), n: trailersOnlyCalls},
		{name: "empty server stream", call: streamStatus(0, 0, codes.OK, "", false), n: trailersOnlyCalls},
		{name: "empty server stream with trailers", call: streamStatus(0, 0, codes.OK, "", false, trailerMDKey, "1"), n: trailersOnlyCalls},
		{name: "error after headers, no messages", call: unaryStatus(codes.NotFound, oddMessage, headerMDKey, "1", trailerMDKey, "1"), n: 500},
		{name: "unary with header and trailer metadata", call: unaryStatus(codes.OK, "", headerMDKey, "1", trailerMDKey, "1"), n: 500},
		{name: "error after three messages", call: streamStatus(3, 10, codes.Aborted, oddMessage, false, headerMDKey, "1", trailerMDKey, "1"), n: 500},
		{name: "long stream", call: streamStatus(1000, 1024, codes.OK, "", false, trailerMDKey, "1"), n: 10},
		{name: "long stream ending in an error", call: streamStatus(1000, 1024, codes.DataLoss, oddMessage, false, headerMDKey, "1", trailerMDKey, "1"), n: 10},
		{name: "deadline in a stream", call: withDeadline(20*time.Millisecond, streamStatus(1, 1, codes.OK, "", false, hangKey, "1")), n: 50, codeOnly: true},
		{name: "deadline before the headers", call: withDeadline(20*time.Millisecond, streamStatus(0, 0, codes.OK, "", false, hangKey, "1")), n: 50, codeOnly: true},
		{name: "cancelled by the client", call: streamStatus(1, 1, codes.OK, "", true, hangKey, "1"), n: 50, codeOnly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.call(t.Context(), direct)
			same := func(got callEnd) bool { return reflect.DeepEqual(got, want) }
			if tt.codeOnly {
				same = func(got callEnd) bool { return got.code == want.code }
			}
			repeat(t, proxied, tt.call, tt.n, same, "as directly: "+want.String())
		})
	}
}

// TestGRPCProxy_OwnAnswersPassThrough: the proxy's own answers — an
// abort fault's status and a guard's refusal, both trailers-only, a
// fallback's messages and trailers, a guard timeout's DEADLINE_EXCEEDED
// before or after the headers — reach a grpc-go client whole every time.
func TestGRPCProxy_OwnAnswersPassThrough(t *testing.T) {
	up := startGRPCUpstream(t, statusService{})
	board := inject.NewBoard(0, nil)
	aborted := dialConn(t, startGRPCProxy(t, up, board).Addr())
	grpcFault(t, board, "abort", "{code: PERMISSION_DENIED, message: 'no: ünïcode 100%'}")
	refused := dialConn(t, startProxy(t, harness.Options{Upstream: "http://" + up, Protocol: harness.ProtocolGRPC, Guard: guard.NewChain(refuse{})}).Addr())
	fb, err := guard.NewFallback("stub", guard.DefaultFallbackConfig(), guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fellBack := dialConn(t, startProxy(t, harness.Options{Upstream: "http://" + up, Protocol: harness.ProtocolGRPC, Guard: guard.NewChain(fb)}).Addr())
	to, err := guard.NewTimeout("t", guard.TimeoutConfig{After: 100 * time.Millisecond}, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	timedOut := dialConn(t, startProxy(t, harness.Options{Upstream: "http://" + up, Protocol: harness.ProtocolGRPC, Guard: guard.NewChain(to)}).Addr())

	fault := metadata.Pairs(strings.ToLower(inject.FaultHeader), "abort")
	refusal := metadata.Pairs(guard.GuardMetadata, "refuse-all", "retry-after", "2")
	fallback := metadata.Pairs(strings.ToLower(guard.FallbackHeader), guard.FallbackStatic)
	tests := []struct {
		name string
		conn *grpc.ClientConn
		call statusCall
		want func(callEnd) bool
		n    int
	}{
		{name: "abort", conn: aborted, call: unaryStatus(codes.OK, ""), want: func(got callEnd) bool {
			return got.code == codes.PermissionDenied && got.msg == "no: ünïcode 100%" && hasAll(got.trailer, fault)
		}, n: trailersOnlyCalls},
		{name: "guard refusal", conn: refused, call: unaryStatus(codes.OK, ""), want: func(got callEnd) bool {
			return got.code == codes.ResourceExhausted && strings.Contains(got.msg, `"refuse-all"`) && hasAll(got.trailer, refusal)
		}, n: trailersOnlyCalls},
		{name: "fallback", conn: fellBack, call: unaryStatus(codes.Unavailable, "down"), want: func(got callEnd) bool {
			return got.code == codes.OK && got.messages == 1 && hasAll(got.trailer, fallback)
		}, n: 500},
		// The upstream, told the time left, may end the call first: the
		// code is the same either way.
		// The upstream, told the time left, may end the call first, and on
		// a busy machine the deadline may pass before the first message
		// is through: the code is the same either way.
		{name: "guard timeout before the headers", conn: timedOut, call: streamStatus(0, 0, codes.OK, "", false, hangKey, "1"), want: func(got callEnd) bool {
			return got.code == codes.DeadlineExceeded
		}, n: 40},
		{name: "guard timeout in a stream", conn: timedOut, call: streamStatus(1, 1, codes.OK, "", false, hangKey, "1"), want: func(got callEnd) bool {
			return got.code == codes.DeadlineExceeded && got.messages <= 1
		}, n: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repeat(t, tt.conn, tt.call, tt.n, tt.want, tt.name+"'s status and metadata")
		})
	}
}

// hasAll reports whether md holds every key of want with its values.
func hasAll(md, want metadata.MD) bool {
	for k, v := range want {
		if !slices.Equal(md.Get(k), v) {
			return false
		}
	}
	return true
}

// frame is what the raw client read of one frame of its stream.
type frame struct {
	kind      string // HEADERS or DATA
	endStream bool
	fields    []string // a HEADERS frame's fields, "name: value", sorted
	data      int      // a DATA frame's length
}

func (f frame) String() string {
	end := ""
	if f.endStream {
		end = "+END_STREAM"
	}
	if f.kind == "DATA" {
		return fmt.Sprintf("DATA%s(%d bytes)", end, f.data)
	}
	return fmt.Sprintf("HEADERS%s%v", end, f.fields)
}

// rawCall makes one gRPC call with an empty request message to addr as a
// bare h2c client (no gRPC library between it and the wire) and returns
// the frames of the response, up to the one that ends the stream.
func rawCall(t *testing.T, addr, path string) []frame {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(hangGuard))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", addr}, {":path", path},
		{"content-type", "application/grpc"}, {"te", "trailers"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteData(1, true, make([]byte, 5)); err != nil { // one empty message
		t.Fatal(err)
	}
	var frames []frame
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read a frame after %v: %v", frames, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
			continue
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = fr.WritePing(true, f.Data)
			}
			continue
		case *http2.GoAwayFrame, *http2.RSTStreamFrame:
			t.Fatalf("%v after %v", f, frames)
		case *http2.MetaHeadersFrame:
			var fields []string
			for _, hf := range f.Fields {
				fields = append(fields, hf.Name+": "+hf.Value)
			}
			slices.Sort(fields)
			frames = append(frames, frame{kind: "HEADERS", endStream: f.StreamEnded(), fields: fields})
		case *http2.DataFrame:
			frames = append(frames, frame{kind: "DATA", endStream: f.StreamEnded(), data: len(f.Data())})
		default:
			continue
		}
		if frames[len(frames)-1].endStream {
			return frames
		}
	}
}

// TestGRPCProxy_TrailersOnlyFrames: on the wire, a trailers-only answer
// leaves the proxy as the upstream sent it — one HEADERS frame that ends
// the stream, with the same fields — and an abort fault answers the same
// way.
func TestGRPCProxy_TrailersOnlyFrames(t *testing.T) {
	up := startGRPCUpstream(t, statusService{})
	board := inject.NewBoard(0, nil)
	p := startGRPCProxy(t, up, board)
	const unknown = "/grpc.testing.TestService/NoSuchCall"
	want := rawCall(t, up, unknown)
	if len(want) != 1 || !want[0].endStream || want[0].kind != "HEADERS" {
		t.Fatalf("the upstream answered %v, want one HEADERS frame that ends the stream", want)
	}
	for i := range 200 {
		if got := rawCall(t, p.Addr(), unknown); !reflect.DeepEqual(got, want) {
			t.Fatalf("call %d: the proxy answered %v, want %v", i, got, want)
		}
	}

	grpcFault(t, board, "abort", "{code: UNAVAILABLE, message: 'down 100%'}")
	wantAbort := frame{kind: "HEADERS", endStream: true, fields: []string{
		":status: 200", "content-type: application/grpc", "grpc-message: down 100%25", "grpc-status: 14", strings.ToLower(inject.FaultHeader) + ": abort"}}
	slices.Sort(wantAbort.fields)
	for i := range 200 {
		if got := rawCall(t, p.Addr(), "/grpc.testing.TestService/UnaryCall"); !reflect.DeepEqual(got, []frame{wantAbort}) {
			t.Fatalf("call %d: the abort answered %v, want %v", i, got, wantAbort)
		}
	}
}
