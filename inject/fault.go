package inject

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/resctl/resctl/quantity"
)

// Spec is the configuration of one fault, as written in a scenario under the
// fault's kind name. Specs are plain data; an HTTPSpec or a ConnSpec builds
// the live fault.
type Spec interface {
	// Kind is the name the scenario uses for this fault, e.g. "latency".
	Kind() string
	// Selector says which requests or connections the fault applies to,
	// and how often it acts on them.
	Selector() Match
	// Check reports every problem with the configuration, naming the
	// offending field by its YAML key.
	Check(problem func(field, msg string))
}

// HTTPSpec is a Spec of a fault that acts on HTTP requests.
type HTTPSpec interface {
	Spec
	// Build returns the fault the configuration describes. It is only
	// called on a Spec whose Check reported nothing.
	Build() HTTPFault
}

// ConnSpec is a Spec of a fault that acts on the bytes of proxied TCP
// connections (the proxy's tcp mode).
type ConnSpec interface {
	Spec
	// BuildConn returns the fault the configuration describes. It is only
	// called on a Spec whose Check reported nothing.
	BuildConn() ConnFault
}

// HTTPFault acts on one HTTP request that the Board selected for it.
type HTTPFault interface {
	// Inject applies the fault. It returns true when it answered the request
	// itself, so the request must not be forwarded upstream. Inject must
	// return promptly once the request's context is done.
	Inject(w http.ResponseWriter, r *http.Request) (answered bool)
}

// ResponseFault is an HTTPFault that also acts on the upstream's response
// (slows, cuts, corrupts or resets it). The Board forwards the request
// through the writer WrapResponse returns and calls finish once the
// upstream's handler has returned.
type ResponseFault interface {
	HTTPFault
	WrapResponse(w http.ResponseWriter, r *http.Request) (wrapped http.ResponseWriter, finish func())
}

// Match selects the requests a fault applies to and says how often it acts
// on them. Every HTTP fault kind embeds it, so every kind takes the same
// selection keys.
type Match struct {
	// Path is a path prefix; empty matches every path.
	Path string `yaml:"path"`
	// PathPattern is a regular expression (RE2) the path must match;
	// anchor it with ^…$ to match the whole path.
	PathPattern string `yaml:"path_pattern"`
	// Method is an HTTP method; empty matches every method.
	Method string `yaml:"method"`
	// Headers are request headers the request must carry; an empty value
	// matches any value of a header that is present.
	Headers map[string]string `yaml:"headers"`
	// Percent is the share of matching requests the fault acts on.
	Percent quantity.Percent `yaml:"percent"`
	// Schedule narrows further when the fault acts: the first N, every
	// Nth, on/off windows, or a ramp of probability.
	Schedule Schedule `yaml:"schedule"`
}

// DefaultPercent is the share of matching requests a fault acts on when the
// scenario does not say.
const DefaultPercent = quantity.Percent(100)

func defaultMatch() Match { return Match{Percent: DefaultPercent} }

// Selector returns the match itself, so kinds that embed Match satisfy that
// part of Spec without repeating it.
func (m Match) Selector() Match { return m }

func (m Match) check(problem func(field, msg string)) {
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		problem("path", "must start with /")
	}
	if m.PathPattern != "" {
		if _, err := regexp.Compile(m.PathPattern); err != nil {
			problem("path_pattern", "not a regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
	for name := range m.Headers {
		if name == "" || strings.ContainsAny(name, " :\t\r\n") {
			problem("headers", fmt.Sprintf("%q is not a header name", name))
		}
	}
	m.checkRate(problem)
}

// checkRate checks what HTTP and connection selectors share.
func (m Match) checkRate(problem func(field, msg string)) {
	// Specs decoded from YAML are range-checked as they are parsed; specs
	// built in code or from JSON are checked here.
	if p := float64(m.Percent); !(p >= 0 && p <= 100) {
		problem("percent", fmt.Sprintf("%v is outside 0%%..100%%", p))
	}
	m.Schedule.check(func(field, msg string) { problem("schedule."+field, msg) })
	if !m.Schedule.Ramp.IsZero() && m.Percent != DefaultPercent {
		problem("percent", "set either percent or schedule.ramp, not both: the ramp sets the probability")
	}
}

// matcher is a Match compiled for the request path.
type matcher struct {
	path, method string
	pattern      *regexp.Regexp
	headers      []headerMatch
}

type headerMatch struct{ name, value string }

func (m Match) compile() matcher {
	c := matcher{path: m.Path, method: m.Method}
	if m.PathPattern != "" {
		c.pattern = regexp.MustCompile(m.PathPattern) // Check has compiled it
	}
	for name, v := range m.Headers {
		c.headers = append(c.headers, headerMatch{http.CanonicalHeaderKey(name), v})
	}
	slices.SortFunc(c.headers, func(a, b headerMatch) int { return strings.Compare(a.name, b.name) })
	return c
}

func (m *matcher) matches(r *http.Request) bool {
	if m.method != "" && !strings.EqualFold(m.method, r.Method) {
		return false
	}
	if m.path != "" && !strings.HasPrefix(r.URL.Path, m.path) {
		return false
	}
	if m.pattern != nil && !m.pattern.MatchString(r.URL.Path) {
		return false
	}
	for _, h := range m.headers {
		vs, ok := r.Header[h.name]
		if !ok || (h.value != "" && !slices.Contains(vs, h.value)) {
			return false
		}
	}
	return true
}

// Layer is where a fault acts: on HTTP requests, on gRPC calls, or on the
// bytes of TCP connections. The same kind name can mean a fault of each
// layer ("latency", "abort"), so kinds are looked up per layer.
type Layer string

// Layers of the proxy.
const (
	// LayerHTTP faults act on requests of the http and h2c proxies.
	LayerHTTP Layer = "http"
	// LayerTCP faults act on connections of the tcp proxy.
	LayerTCP Layer = "tcp"
	// LayerGRPC faults act on calls of the grpc proxy. They speak gRPC:
	// they select calls by method and metadata and end them with gRPC
	// statuses, in trailers.
	LayerGRPC Layer = "grpc"
)

// kinds is the registry from a fault's kind name, per layer, to a
// constructor of its Spec, pre-filled with the kind's defaults.
var kinds = map[Layer]map[string]func() Spec{
	LayerHTTP: {
		"latency":   func() Spec { return &LatencySpec{Match: defaultMatch()} },
		"abort":     func() Spec { return &AbortSpec{Match: defaultMatch(), Status: DefaultAbortStatus} },
		"reset":     func() Spec { return &ResetSpec{Match: defaultMatch()} },
		"bandwidth": func() Spec { return &BandwidthSpec{Match: defaultMatch()} },
		"truncate":  func() Spec { return &TruncateSpec{Match: defaultMatch()} },
		"corrupt":   func() Spec { return &CorruptSpec{Match: defaultMatch(), Rate: DefaultCorruptRate} },
		"header":    func() Spec { return &HeaderSpec{Match: defaultMatch(), Side: SideResponse} },
	},
	// The grpc layer has gRPC-aware kinds only, all with gRPC's selectors
	// (method, service, metadata): HTTP's abort, reset and latency
	// become abort and stream_error with a status, a reset between
	// messages, and delay; header and bandwidth, which keep a gRPC
	// exchange well-formed, become metadata and bandwidth. Truncate and
	// corrupt have no counterpart: they break the message framing, which
	// a client reports as INTERNAL whatever was meant.
	LayerGRPC: {
		"abort":        func() Spec { return &GRPCAbortSpec{GRPCMatch: defaultGRPCMatch(), Code: DefaultGRPCCode} },
		"delay":        func() Spec { return &GRPCDelaySpec{GRPCMatch: defaultGRPCMatch()} },
		"reset":        func() Spec { return &GRPCResetSpec{GRPCMatch: defaultGRPCMatch()} },
		"stream_error": func() Spec { return &GRPCStreamErrorSpec{GRPCMatch: defaultGRPCMatch(), Code: DefaultGRPCCode} },
		"metadata":     func() Spec { return &GRPCMetadataSpec{GRPCMatch: defaultGRPCMatch(), Side: SideResponse} },
		"bandwidth":    func() Spec { return &GRPCBandwidthSpec{GRPCMatch: defaultGRPCMatch()} },
	},
	LayerTCP: {
		"latency":    func() Spec { return &TCPLatencySpec{ConnMatch: defaultConnMatch()} },
		"bandwidth":  func() Spec { return &TCPBandwidthSpec{ConnMatch: defaultConnMatch()} },
		"blackhole":  func() Spec { return &BlackholeSpec{ConnMatch: ConnMatch{Direction: Both, Percent: DefaultPercent}} },
		"refuse":     func() Spec { return &RefuseSpec{ConnMatch: ConnMatch{Direction: Both, Percent: DefaultPercent}} },
		"reset_peer": func() Spec { return &ResetPeerSpec{ConnMatch: defaultConnMatch()} },
		"slow_close": func() Spec { return &SlowCloseSpec{ConnMatch: defaultConnMatch()} },
		"slicer": func() Spec {
			return &SlicerSpec{ConnMatch: defaultConnMatch(), AverageSize: DefaultSliceSize, SizeVariation: DefaultSliceVariation, Delay: DefaultSliceDelay}
		},
		"limit_data": func() Spec { return &LimitDataSpec{ConnMatch: defaultConnMatch()} },
	},
}

// NewSpec returns an empty HTTP Spec of the named kind with its defaults
// filled in, ready to be decoded into.
func NewSpec(kind string) (Spec, bool) { return NewSpecFor(LayerHTTP, kind) }

// NewSpecFor returns an empty Spec of the named kind of a layer, with its
// defaults filled in.
func NewSpecFor(layer Layer, kind string) (Spec, bool) {
	f, ok := kinds[layer][kind]
	if !ok {
		return nil, false
	}
	return f(), true
}

// Kinds lists the HTTP fault kind names a scenario may use, sorted.
func Kinds() []string { return KindsFor(LayerHTTP) }

// KindsFor lists the fault kind names of a layer, sorted.
func KindsFor(layer Layer) []string {
	names := make([]string, 0, len(kinds[layer]))
	for k := range kinds[layer] {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// LayerOf returns the layer a Spec acts on.
func LayerOf(s Spec) Layer {
	switch s.(type) {
	case ConnSpec:
		return LayerTCP
	case grpcSpec:
		return LayerGRPC
	}
	return LayerHTTP
}

// LayerOfProtocol is the layer a proxy's faults act on, by the proxy's
// protocol ("http", "h2c", "grpc", "tcp"): an h2c proxy's act on HTTP
// requests.
func LayerOfProtocol(protocol string) Layer {
	switch protocol {
	case "tcp":
		return LayerTCP
	case "grpc":
		return LayerGRPC
	}
	return LayerHTTP
}

// sleep waits d or until ctx is done, whichever is first, and reports
// whether the whole wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
