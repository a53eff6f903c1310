package load

import (
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/resctl/resctl/check"
)

// Kinds of failure reason, the first part of record.Result.Reason.
const (
	ReasonStatus    = "status"
	ReasonTransport = "transport"
	ReasonCheck     = "check"
	ReasonDropped   = "dropped"
)

// dropReason is the reason of a request dropped at the in-flight cap.
const dropReason = ReasonDropped + ": max_in_flight reached"

// transportClasses group transport errors by what went wrong, whatever
// the URL and addresses in their text.
var transportClasses = []struct{ substr, class string }{
	{"connection refused", "connection refused"},
	{"connection reset", "connection reset"},
	{"client.timeout", "timeout"},
	{"deadline exceeded", "timeout"},
	{"i/o timeout", "timeout"},
	{"broken pipe", "broken pipe"},
	{"eof", "connection closed early (EOF)"},
	{"no such host", "host not found"},
	{"x509:", "TLS"},
	{"tls:", "TLS"},
}

// urlPrefix is how Go's HTTP client starts an error: `Get "http://…": `.
var urlPrefix = regexp.MustCompile(`^[A-Z]+ "[^"]*": `)

// transportReason groups a transport error's text.
func transportReason(text string) string {
	lower := strings.ToLower(text)
	for _, c := range transportClasses {
		if strings.Contains(lower, c.substr) {
			return ReasonTransport + ": " + c.class
		}
	}
	return ReasonTransport + ": " + urlPrefix.ReplaceAllString(text, "")
}

// ReasonOf is why a saved HTTP result failed, from its code and error text
// as a results file keeps them; "" for a success.
func ReasonOf(code int, errText string) string {
	switch {
	case errText == "":
		return ""
	case IsDropped(errText):
		return dropReason
	case strings.HasPrefix(errText, ReasonCheck+": "):
		return errText
	case code == 0:
		return transportReason(errText)
	}
	return ReasonStatus + ": " + strconv.Itoa(code)
}

// httpReason decides an HTTP response: "" for a success, or why it
// failed. Without a status check a status of 400 or above fails it, as
// vegeta has it; with one, the checks decide.
func httpReason(code int, errText string, c *check.Checks, r check.Response) string {
	if code == 0 || IsDropped(errText) || (errText != "" && !c.HasStatus()) {
		return ReasonOf(code, errText)
	}
	if why := c.Verify(r); why != "" {
		return ReasonCheck + ": " + why
	}
	return ""
}

// grpcReason decides a finished gRPC call the same way: a status other
// than OK fails it unless a status check allows it. A failure whose
// status stands for a transport error (connection refused, reset) is
// named as that.
func grpcReason(code codes.Code, msg string, c *check.Checks, r check.Response) string {
	why := ""
	if code != codes.OK && !c.HasStatus() {
		why = ReasonStatus + ": " + code.String()
	} else if v := c.Verify(r); v != "" {
		why = ReasonCheck + ": " + v
	}
	if why != "" && code != codes.OK && isTransport(msg) {
		return transportReason(msg)
	}
	return why
}

// isTransport says whether an error's text is one of a known transport
// failure.
func isTransport(text string) bool {
	lower := strings.ToLower(text)
	for _, c := range transportClasses {
		if strings.Contains(lower, c.substr) {
			return true
		}
	}
	return false
}
