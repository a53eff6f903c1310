package inject

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/resctl/resctl/quantity"
)

// GRPCMatch selects the gRPC calls a fault of the grpc layer applies to, in
// gRPC's own terms, and says how often it acts on them. A call's full
// method name is its URL path and its metadata are its request headers,
// so a GRPCMatch is an HTTP Match underneath (see Selector): the Board
// matches and schedules gRPC faults exactly as HTTP ones.
type GRPCMatch struct {
	// Method is a full method name, "/package.Service/Method", matched
	// exactly.
	Method string `yaml:"method"`
	// Service is a fully qualified service name, "package.Service": every
	// method of the service matches.
	Service string `yaml:"service"`
	// MethodPattern is a regular expression (RE2) the full method name
	// must match; anchor it with ^…$ to match the whole name.
	MethodPattern string `yaml:"method_pattern"`
	// Metadata are request metadata the call must carry; an empty value
	// matches any value of a key that is present. Keys are matched without
	// regard to case, as gRPC metadata keys are lower case on the wire.
	Metadata map[string]string `yaml:"metadata"`
	// Percent is the share of matching calls the fault acts on.
	Percent quantity.Percent `yaml:"percent"`
	// Schedule narrows further when the fault acts: the first N calls,
	// every Nth, on/off windows, or a ramp of probability.
	Schedule Schedule `yaml:"schedule"`
}

func defaultGRPCMatch() GRPCMatch { return GRPCMatch{Percent: DefaultPercent} }

// Selector returns the HTTP Match the gRPC selector stands for: the service
// becomes a path prefix, the exact method an anchored pattern, metadata
// request headers.
func (m GRPCMatch) Selector() Match {
	s := Match{PathPattern: m.MethodPattern, Headers: m.Metadata, Percent: m.Percent, Schedule: m.Schedule}
	if m.Service != "" {
		s.Path = "/" + m.Service + "/"
	}
	if m.Method != "" {
		s.PathPattern = "^" + regexp.QuoteMeta(m.Method) + "$"
	}
	return s
}

func (m GRPCMatch) check(problem func(field, msg string)) {
	if m.Method != "" {
		svc, meth, ok := strings.Cut(strings.TrimPrefix(m.Method, "/"), "/")
		if !strings.HasPrefix(m.Method, "/") || !ok || svc == "" || meth == "" || strings.Contains(meth, "/") {
			problem("method", fmt.Sprintf("%q is not a full method name, e.g. /grpc.testing.TestService/UnaryCall", m.Method))
		}
	}
	if m.Service != "" && strings.ContainsAny(m.Service, "/ \t") {
		problem("service", fmt.Sprintf("%q is not a service name, e.g. grpc.testing.TestService", m.Service))
	}
	if m.MethodPattern != "" {
		if m.Method != "" {
			problem("method_pattern", "set either method or method_pattern, not both")
		} else if _, err := regexp.Compile(m.MethodPattern); err != nil {
			problem("method_pattern", "not a regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
	for name := range m.Metadata {
		if !validHeaderName(name) {
			problem("metadata", fmt.Sprintf("%q is not a metadata key", name))
		}
	}
	Match{Percent: m.Percent, Schedule: m.Schedule}.checkRate(problem)
}

// grpcSpec marks the specs of the grpc layer, for LayerOf.
type grpcSpec interface{ grpcLayer() }

func (GRPCMatch) grpcLayer() {}

// GRPCCode is a gRPC status code as a scenario writes it: by name
// (UNAVAILABLE, in any case) or by number (14).
type GRPCCode codes.Code

// grpcCodeNames are the codes' names as the gRPC specification spells
// them, indexed by code.
var grpcCodeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// UnmarshalText reads a code name or number.
func (c *GRPCCode) UnmarshalText(b []byte) error {
	s := strings.ToUpper(strings.TrimSpace(string(b)))
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n >= len(grpcCodeNames) {
			return fmt.Errorf("%q is not a gRPC code (0..16)", b)
		}
		*c = GRPCCode(n)
		return nil
	}
	if s == "CANCELED" { // grpc-go's spelling
		s = "CANCELLED"
	}
	for i, name := range grpcCodeNames {
		if s == name {
			*c = GRPCCode(i)
			return nil
		}
	}
	return fmt.Errorf("%q is not a gRPC code name, e.g. UNAVAILABLE or 14", b)
}

// MarshalText writes the code's name, so Params shows what a scenario
// would write.
func (c GRPCCode) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// String is the code's name as the gRPC specification spells it.
func (c GRPCCode) String() string {
	if int(c) < len(grpcCodeNames) {
		return grpcCodeNames[c]
	}
	return "CODE(" + strconv.Itoa(int(c)) + ")"
}

// checkError reports a code that is not an error a fault can end a call
// with.
func (c GRPCCode) checkError(field string, problem func(field, msg string)) {
	switch {
	case int(c) >= len(grpcCodeNames):
		problem(field, fmt.Sprintf("%d is not a gRPC code (0..16)", c))
	case c == GRPCCode(codes.OK):
		problem(field, "must be an error code, not OK, e.g. UNAVAILABLE")
	}
}

// DefaultGRPCCode is the status gRPC faults end calls with when the
// scenario does not say: the one a client treats as transient.
const DefaultGRPCCode = GRPCCode(codes.Unavailable)

// defaultGRPCMessage is the grpc-message of an injected status that names
// none, so a client's logs tell it from a real failure.
const defaultGRPCMessage = "injected by resctl"

// WriteGRPCStatus answers a gRPC call with a status and no message: a
// trailers-only response (HTTP 200, content-type application/grpc,
// grpc-status and grpc-message in the headers), as a gRPC server rejects
// a call. Nothing must have been written to w yet. The harness proxy
// answers with it too when it cannot reach the upstream.
func WriteGRPCStatus(w http.ResponseWriter, code codes.Code, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(code)))
	if msg != "" {
		h.Set("Grpc-Message", EncodeGRPCMessage(msg))
	}
	w.WriteHeader(http.StatusOK)
}

// setGRPCTrailers ends a response that has already started with a status:
// grpc-status and grpc-message as trailers, replacing any the upstream
// would send.
func setGRPCTrailers(h http.Header, code codes.Code, msg string) {
	for _, k := range []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"} {
		delete(h, http.TrailerPrefix+k)
		delete(h, k) // a trailer the upstream declared is a plain key
	}
	h[http.TrailerPrefix+"Grpc-Status"] = []string{strconv.Itoa(int(code))}
	h[http.TrailerPrefix+"Grpc-Message"] = []string{EncodeGRPCMessage(msg)}
}

// EncodeGRPCMessage percent-encodes a status message for the grpc-message
// header, as the gRPC HTTP/2 protocol requires: bytes outside printable
// ASCII, and '%' itself, become %XX.
func EncodeGRPCMessage(msg string) string {
	safe := func(c byte) bool { return c >= ' ' && c <= '~' && c != '%' }
	i := 0
	for i < len(msg) && safe(msg[i]) {
		i++
	}
	if i == len(msg) {
		return msg
	}
	var b strings.Builder
	b.WriteString(msg[:i])
	for ; i < len(msg); i++ {
		if c := msg[i]; safe(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// grpcFrames counts the length-prefixed messages of a gRPC body as it
// passes in pieces: a flag byte, a four-byte big-endian length, then the
// message. Faults use it to act between messages, whatever their types.
type grpcFrames struct {
	msgs uint64  // complete messages seen
	hdr  [5]byte // the prefix of the message in progress
	hn   int     // bytes of hdr filled
	left uint32  // bytes of the message in progress still to come
}

// feed consumes p until message number upto is complete, and returns how
// many bytes of p that took: all of p when it ends before or at that
// message's last byte.
func (f *grpcFrames) feed(p []byte, upto uint64) int {
	i := 0
	for i < len(p) && f.msgs < upto {
		if f.hn < len(f.hdr) {
			k := copy(f.hdr[f.hn:], p[i:])
			f.hn += k
			i += k
			if f.hn < len(f.hdr) {
				continue
			}
			f.left = binary.BigEndian.Uint32(f.hdr[1:])
		} else {
			k := min(uint32(len(p)-i), f.left)
			f.left -= k
			i += int(k)
		}
		if f.left == 0 {
			f.msgs++
			f.hn = 0
		}
	}
	return i
}
