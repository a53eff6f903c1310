package guard

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/resctl/resctl/quantity"
)

// FallbackConfig answers a request its chain rejected or that failed —
// after every retry — with something else: the last good response for the
// same path and query, when LastGood keeps them and one is fresh; else the
// stub in File; else the static Status and Body. Each carries
// FallbackHeader naming which it was, so that a run tells served-by-fallback
// from served-by-upstream. Wherever it is written in a chain, a fallback
// answers for the whole chain.
//
// A gRPC call is answered in gRPC, as a successful call: the stub's Body or
// File is one serialized message, sent framed with grpc-status 0, and
// Status and ContentType are left out (the answer is a 200 in the call's
// own content type).
type FallbackConfig struct {
	// Status is the static answer's HTTP status.
	Status int `yaml:"status"`
	// Body is the static answer's body.
	Body string `yaml:"body"`
	// File is a stub to answer with instead of Body, read beside the
	// scenario.
	File string `yaml:"file"`
	// ContentType is the answer's Content-Type.
	ContentType string `yaml:"content_type"`
	// Headers are more headers of the answer.
	Headers map[string]string `yaml:"headers"`
	// LastGood keeps the last good response of each path and query, to
	// answer with while it is fresh.
	LastGood LastGoodConfig `yaml:"last_good"`
	// On is what counts as failure; a guard policy's rejection always
	// does, a client that went away never.
	On FailureConfig `yaml:"on"`
}

// LastGoodConfig keeps the latest successful response of each path and
// query — a 2xx answer to a GET, or a gRPC call's messages when it ended
// with grpc-status 0 — bounded in entries, age and size.
type LastGoodConfig struct {
	// Entries is how many responses are kept; 0 keeps none.
	Entries int           `yaml:"entries"`
	MaxAge  time.Duration `yaml:"max_age"`
	// MaxBody is the largest body kept.
	MaxBody quantity.Bytes `yaml:"max_body"`
}

// Fallback kinds, as FallbackHeader says them.
const (
	FallbackStatic   = "static"
	FallbackLastGood = "last_good"
	FallbackFile     = "file"
)

// DefaultFallbackConfig answers 200 with an empty JSON object and keeps no
// last good responses.
func DefaultFallbackConfig() FallbackConfig {
	return FallbackConfig{
		Status:      http.StatusOK,
		ContentType: "application/json",
		LastGood:    LastGoodConfig{MaxAge: time.Minute, MaxBody: 64 << 10},
		On:          DefaultFailure(),
	}
}

var _ Config = (*FallbackConfig)(nil)

// Kind implements Config.
func (*FallbackConfig) Kind() string { return "fallback" }

// Check implements Config.
func (c *FallbackConfig) Check(problem func(field, msg string)) {
	if c.Status < 200 || c.Status > 599 {
		problem("status", fmt.Sprintf("%d is not an HTTP status (200..599)", c.Status))
	}
	if c.File != "" && c.Body != "" {
		problem("file", "give a body or a file, not both")
	}
	if c.File != "" {
		if st, err := os.Stat(c.File); err != nil {
			problem("file", fmt.Sprintf("%q does not exist or cannot be read: %v", c.File, err))
		} else if st.IsDir() {
			problem("file", fmt.Sprintf("%q is a directory", c.File))
		}
	}
	if c.LastGood.Entries < 0 {
		problem("last_good.entries", "must be at least 0")
	}
	if c.LastGood.Entries > 0 && c.LastGood.MaxAge <= 0 {
		problem("last_good.max_age", "must be above zero, e.g. 1m")
	}
	if c.LastGood.MaxBody < 0 {
		problem("last_good.max_body", "must be at least 0")
	}
	c.On.Check(prefixed("on", problem))
}

// Build implements Config.
func (c *FallbackConfig) Build(name string, o Options) (Policy, error) {
	return build(NewFallback(name, *c, o))
}

// Fallback serves something in place of a failed or rejected call. Its
// one state is "passing".
type Fallback struct {
	passive
	cfg   FallbackConfig
	fails classifier
	body  []byte
	frame []byte // body as one gRPC message, for gRPC calls
	stub  string // the stub's kind: static or file
	pool  sync.Pool

	mu    sync.Mutex
	good  map[string]*goodEntry
	order []string // keys, oldest first

	calls, served                 atomic.Uint64
	static, lastGood, file, stale atomic.Uint64
}

type goodEntry struct {
	status      int
	contentType string
	// encoding is the body's Content-Encoding (a gRPC reply's
	// grpc-encoding), "" for none: a compressed body is replayed only to
	// a client that accepts its encoding.
	encoding string
	// body is a gRPC call's framed messages when grpc is set.
	body []byte
	grpc bool
	at   int64
}

var (
	_ Wrapper   = (*Fallback)(nil)
	_ outermost = (*Fallback)(nil)
)

// NewFallback returns a fallback policy; a stub file is read now.
func NewFallback(name string, c FallbackConfig, o Options) (*Fallback, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	f := &Fallback{cfg: c, fails: newClassifier(c.On), body: []byte(c.Body), stub: FallbackStatic, good: map[string]*goodEntry{}}
	if c.File != "" {
		b, err := os.ReadFile(c.File)
		if err != nil {
			return nil, &ConfigError{Kind: "fallback", Name: name, Problems: []Problem{{"file", err.Error()}}}
		}
		f.body, f.stub = b, FallbackFile
	}
	f.frame = grpcFrame(f.body)
	f.init("fallback", name, o, []string{"passing"}, nil, answer{})
	f.pool.New = func() any { return &fallbackState{f: f} }
	return f, nil
}

func (*Fallback) outermost() {}

// WrapHTTP implements Wrapper.
func (f *Fallback) WrapHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, next) })
}

type fallbackState struct {
	f    *Fallback
	aw   attemptWriter
	good bool
}

// decide implements judge: failures and rejections are discarded, to be
// answered by the fallback.
func (s *fallbackState) decide(a *attemptWriter, status int) int {
	if status == statusClientGone {
		return status
	}
	res := classifyAttempt(status, a.own)
	o := res.outcome()
	if res.rejected || s.f.fails.classify(&o) == failure {
		return 0
	}
	s.good = status >= 200 && status < 300 && !res.isGRPC
	return status
}

func (f *Fallback) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	f.calls.Add(1)
	s := f.pool.Get().(*fallbackState)
	s.good = false
	s.aw.reset(w, s)
	grpcCall := isGRPC(r)
	keep := f.cfg.LastGood.Entries > 0 && (r.Method == http.MethodGet || grpcCall)
	if keep {
		s.aw.tee, s.aw.teeLimit = true, int(f.cfg.LastGood.MaxBody)
	}
	next.ServeHTTP(&s.aw, r)
	if s.aw.state == undecided {
		s.aw.WriteHeader(http.StatusOK)
	}
	switch {
	case s.aw.state == discarded:
		f.answer(w, r, grpcCall)
	case keep && s.good && !s.aw.teeOver && (!grpcCall || endedOK(r, w.Header())):
		f.remember(goodKey(r), s.aw.status, w.Header(), s.aw.body.Bytes(), grpcCall)
		f.served.Add(1)
	default:
		f.served.Add(1)
	}
	s.aw.release()
	f.pool.Put(s)
}

func goodKey(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return r.URL.Path
	}
	return r.URL.Path + "?" + r.URL.RawQuery
}

// endedOK reports whether a gRPC call that was answered with messages
// ended with grpc-status 0, read once its handler returned: a call can
// fail after it sent some, and such a reply must not be replayed.
func endedOK(r *http.Request, h http.Header) bool {
	code, ok := grpcStatusOf(r, h)
	return ok && code == codes.OK
}

func (f *Fallback) remember(key string, status int, h http.Header, body []byte, grpc bool) {
	e := &goodEntry{status: status, contentType: h.Get("Content-Type"), encoding: encodingOf(h, grpc),
		body: append([]byte(nil), body...), grpc: grpc, at: f.clk.nanos()}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.good[key]; !ok {
		f.order = append(f.order, key)
		if len(f.order) > f.cfg.LastGood.Entries {
			delete(f.good, f.order[0])
			f.order = f.order[1:]
		}
	}
	f.good[key] = e
}

func (f *Fallback) lookup(key string) *goodEntry {
	f.mu.Lock()
	e := f.good[key]
	f.mu.Unlock()
	if e == nil {
		return nil
	}
	if time.Duration(f.clk.nanos()-e.at) > f.cfg.LastGood.MaxAge {
		f.stale.Add(1)
		return nil
	}
	return e
}

// answer writes the fallback: the last good response if one is fresh,
// else the stub. A gRPC call is answered in gRPC, and only with a last
// good reply of a gRPC call.
func (f *Fallback) answer(w http.ResponseWriter, r *http.Request, grpcCall bool) {
	h := w.Header()
	if f.cfg.LastGood.Entries > 0 {
		if e := f.lookup(goodKey(r)); e != nil && e.grpc == grpcCall && accepts(r, e.encoding, grpcCall) {
			f.lastGood.Add(1)
			h.Set(FallbackHeader, FallbackLastGood)
			if e.contentType != "" {
				h.Set("Content-Type", e.contentType)
			}
			if e.encoding != "" {
				h.Set(encodingHeader(grpcCall), e.encoding)
			}
			if grpcCall {
				writeGRPCMessages(w, e.body, FallbackLastGood)
				return
			}
			h.Set("Content-Length", strconv.Itoa(len(e.body)))
			w.WriteHeader(e.status)
			_, _ = w.Write(e.body)
			return
		}
	}
	f.stubServed()
	for k, v := range f.cfg.Headers {
		h.Set(k, v)
	}
	h.Set(FallbackHeader, f.stub)
	if grpcCall {
		h.Set("Content-Type", r.Header.Get("Content-Type"))
		writeGRPCMessages(w, f.frame, f.stub)
		return
	}
	if f.cfg.ContentType != "" {
		h.Set("Content-Type", f.cfg.ContentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(f.cfg.Status)
	if !strings.EqualFold(r.Method, http.MethodHead) {
		_, _ = w.Write(f.body)
	}
}

// stubServed counts an answer with the stub.
func (f *Fallback) stubServed() {
	if f.stub == FallbackFile {
		f.file.Add(1)
	} else {
		f.static.Add(1)
	}
}

// grpcFrame makes a serialized message one gRPC length-prefixed message: a
// byte saying it is not compressed, its length in four big-endian bytes,
// then the message. An empty message is five zero bytes.
func grpcFrame(msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// writeGRPCMessages answers a gRPC call successfully with framed messages:
// HTTP 200, the messages as the body, and grpc-status 0 in a trailer, as a
// gRPC server ends a call that went well. The trailer is set after the
// body under http.TrailerPrefix, so it need not be declared.
//
// The fallback's kind goes in a trailer too, beside the header: a gRPC
// client that sees how a call ended (resctl's load, through its balancer)
// is handed the trailers, not the headers.
func writeGRPCMessages(w http.ResponseWriter, framed []byte, kind string) {
	h := w.Header()
	h.Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(framed)
	h.Set(http.TrailerPrefix+"Grpc-Status", "0")
	h.Set(http.TrailerPrefix+FallbackHeader, kind)
}

// FallbackStats counts a fallback's answers.
type FallbackStats struct {
	// Calls is the requests handed to it; Served those the chain
	// answered itself; the rest were fallbacks, by kind.
	Calls, Served          uint64
	Static, LastGood, File uint64
	// Stale counts last good responses found too old to serve.
	Stale uint64
}

// FallbackStats returns the policy's counters.
func (f *Fallback) FallbackStats() FallbackStats {
	return FallbackStats{Calls: f.calls.Load(), Served: f.served.Load(), Static: f.static.Load(),
		LastGood: f.lastGood.Load(), File: f.file.Load(), Stale: f.stale.Load()}
}

var descFallbacks = prometheus.NewDesc("resctl_guard_fallbacks_total", "Responses a fallback policy served in place of the upstream's, by kind.", []string{"policy", "kind", "fallback"}, nil)

func (f *Fallback) collect(ch chan<- prometheus.Metric) {
	s := f.FallbackStats()
	ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(s.Calls), f.name, f.kind)
	for _, k := range []struct {
		n string
		v uint64
	}{{FallbackStatic, s.Static}, {FallbackLastGood, s.LastGood}, {FallbackFile, s.File}} {
		ch <- prometheus.MustNewConstMetric(descFallbacks, prometheus.CounterValue, float64(k.v), f.name, f.kind, k.n)
	}
}

func encodingHeader(grpc bool) string {
	if grpc {
		return "Grpc-Encoding"
	}
	return "Content-Encoding"
}

// encodingOf is the encoding of a response's body, "" for none.
func encodingOf(h http.Header, grpc bool) string {
	e := strings.TrimSpace(h.Get(encodingHeader(grpc)))
	if strings.EqualFold(e, "identity") {
		return ""
	}
	return e
}

// accepts reports whether the client of r takes a body in encoding: any
// takes none; HTTP clients list theirs in Accept-Encoding, gRPC clients in
// grpc-accept-encoding.
func accepts(r *http.Request, encoding string, grpc bool) bool {
	if encoding == "" {
		return true
	}
	h := "Accept-Encoding"
	if grpc {
		h = "Grpc-Accept-Encoding"
	}
	for _, v := range r.Header.Values(h) {
		for _, tok := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(tok), ";")
			if strings.EqualFold(strings.TrimSpace(name), encoding) {
				return true
			}
		}
	}
	return false
}
