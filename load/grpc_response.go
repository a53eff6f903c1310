package load

import (
	"encoding/json"
	"sync"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// How a unary call's response message reaches its checks.
//
// ghz drops the response of every call: no option hands it over, and its
// stats handler is its own. What it does with it is log it: with a logger
// set, each unary call ends with Debugw("Received response", …, "metadata",
// the call's metadata, "response", the message as JSON, …). The metadata
// carries x-resctl-seq, so responseLog finds the call a response belongs
// to. ghz logs only after the call has ended, so with a responseLog the
// tracker records a call once both its end and its response are known
// (callTracker.end and callTracker.response). Streaming calls log their
// messages without the metadata, so their responses cannot be checked.

// responseLog is the ghz logger that passes unary responses to the
// tracker; every other message is dropped.
type responseLog struct {
	calls *callTracker
	out   protoreflect.MessageDescriptor
}

// response is a unary call's response message: as JSON with every field
// (defaults too, so a check can read a zero), and its encoded size.
type response struct {
	json []byte
	size int64
}

func (l *responseLog) Debugw(msg string, kv ...any) {
	if msg != "Received response" {
		return
	}
	var md *metadata.MD
	var body string
	for i := 0; i+1 < len(kv); i += 2 {
		switch kv[i] {
		case "metadata":
			md, _ = kv[i+1].(*metadata.MD)
		case "response":
			body, _ = kv[i+1].(string)
		}
	}
	if md == nil {
		return
	}
	seq, ok := seqOf(*md)
	if !ok {
		return
	}
	l.calls.response(seq, l.decode(body))
}

// decode reads ghz's JSON of the response into the method's output
// message; nil when there is none (the call failed).
func (l *responseLog) decode(body string) *response {
	if body == "" || body == "null" {
		return nil
	}
	m := dynamicpb.NewMessage(l.out)
	if err := protojson.Unmarshal([]byte(body), m); err != nil {
		return &response{json: json.RawMessage(body)}
	}
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		b = []byte(body)
	}
	return &response{json: b, size: int64(proto.Size(m))}
}

func (*responseLog) Debug(...any)          {}
func (*responseLog) Debugf(string, ...any) {}
func (*responseLog) Error(...any)          {}
func (*responseLog) Errorf(string, ...any) {}
func (*responseLog) Errorw(string, ...any) {}

// awaiting pairs each call's end with its response, in whichever order
// they come.
type awaiting struct {
	mu        sync.Mutex
	ended     map[uint64]func(*response) // calls ended, waiting for their response
	responses map[uint64]*response       // responses of calls not yet ended
	got       map[uint64]bool            // responses that came, nil or not
	flushed   bool                       // no more responses will come
}

func newAwaiting() *awaiting {
	return &awaiting{ended: map[uint64]func(*response){}, responses: map[uint64]*response{}, got: map[uint64]bool{}}
}

// end hands finish the response of seq, now or once it comes.
func (a *awaiting) end(seq uint64, finish func(*response)) {
	a.mu.Lock()
	if !a.got[seq] && !a.flushed {
		a.ended[seq] = finish
		a.mu.Unlock()
		return
	}
	r := a.responses[seq]
	delete(a.responses, seq)
	delete(a.got, seq)
	a.mu.Unlock()
	finish(r)
}

// response notes the response of seq and finishes its call if it ended.
func (a *awaiting) response(seq uint64, r *response) {
	a.mu.Lock()
	finish, ok := a.ended[seq]
	if !ok {
		a.responses[seq], a.got[seq] = r, true
		a.mu.Unlock()
		return
	}
	delete(a.ended, seq)
	a.mu.Unlock()
	finish(r)
}

// flush finishes, without a response, every call still waiting for one,
// and any that ends later: once ghz has returned, no more responses come.
func (a *awaiting) flush() {
	a.mu.Lock()
	a.flushed = true
	left := a.ended
	a.ended = map[uint64]func(*response){}
	a.mu.Unlock()
	for _, finish := range left {
		finish(nil)
	}
}
