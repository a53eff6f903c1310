package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/resctl/resctl/quantity"
)

// Response is what a check looks at of one response.
type Response struct {
	// Status is the HTTP status code, or for gRPC the call's status code
	// name as grpc-go spells it (OK, NotFound) in GRPCCode.
	Status   int
	GRPCCode string
	Header   http.Header
	// Size is the body's whole length; Body is its first bytes, up to the
	// load's limit (DefaultBodyLimit), or for gRPC the response message in
	// its JSON mapping.
	Size int64
	Body []byte
}

// Checks are a compiled Spec, safe for concurrent use.
type Checks struct {
	grpc     bool
	status   []string // HTTP codes as text, or gRPC codes as grpc-go spells them
	headers  []headerCheck
	size     *Size
	contains string
	matches  *regexp.Regexp
	fields   []fieldCheck
}

type headerCheck struct {
	name    string
	present *bool
	equals  *string
	matches *regexp.Regexp
}

type fieldCheck struct {
	path  string
	steps []string
	want  any
}

// Compile turns a checked Spec into Checks; nil for a spec that checks
// nothing. Its error is a problem Check reports too.
func Compile(s *Spec, grpc bool) (*Checks, error) {
	if s == nil {
		return nil, nil
	}
	var errs []error
	s.Check(grpc, func(field, msg string) { errs = append(errs, fmt.Errorf("expect.%s: %s", field, msg)) })
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := &Checks{grpc: grpc, size: s.BodySize, contains: s.BodyContains}
	for _, st := range s.Status {
		if grpc {
			code, _ := grpcCode(string(st))
			c.status = append(c.status, code.String())
		} else {
			c.status = append(c.status, string(st))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Headers)) {
		h := s.Headers[name]
		hc := headerCheck{name: canonicalHeader(name), present: h.Present, equals: h.Equals}
		if h.Matches != "" {
			hc.matches = regexp.MustCompile(h.Matches)
		}
		c.headers = append(c.headers, hc)
	}
	if s.BodyMatches != "" {
		c.matches = regexp.MustCompile(s.BodyMatches)
	}
	for _, p := range slices.Sorted(maps.Keys(s.JSON)) {
		steps, _ := parsePath(p)
		var want any
		if err := json.Unmarshal([]byte(s.JSON[p].JSON), &want); err != nil {
			return nil, fmt.Errorf("expect.json.%s: %w", p, err)
		}
		c.fields = append(c.fields, fieldCheck{path: p, steps: steps, want: want})
	}
	return c, nil
}

// NeedsBody says whether the checks read the body's content, so the load
// keeps it; a body_size check needs only its length.
func (c *Checks) NeedsBody() bool {
	return c != nil && (c.contains != "" || c.matches != nil || len(c.fields) > 0)
}

// HasStatus says whether the checks decide which statuses are a success.
func (c *Checks) HasStatus() bool { return c != nil && len(c.status) > 0 }

// Verify returns "" for a response that passes every check, or the reason
// the first failing check gives. A reason names the check, not the value
// seen, so reasons group: `status 503 not in [200]` is the one exception,
// and statuses are few.
func (c *Checks) Verify(r Response) string {
	if c == nil {
		return ""
	}
	if len(c.status) > 0 {
		got := strconv.Itoa(r.Status)
		if c.grpc {
			got = r.GRPCCode
		}
		if !slices.Contains(c.status, got) {
			return fmt.Sprintf("status %s not in [%s]", got, strings.Join(c.status, ", "))
		}
	}
	for _, h := range c.headers {
		if reason := h.verify(r.Header); reason != "" {
			return reason
		}
	}
	if s := c.size; s != nil {
		switch {
		case s.Exact != nil && r.Size != int64(*s.Exact):
			return fmt.Sprintf("body size not %s", *s.Exact)
		case s.Min != nil && r.Size < int64(*s.Min):
			return fmt.Sprintf("body size under %s", *s.Min)
		case s.Max != nil && r.Size > int64(*s.Max):
			return fmt.Sprintf("body size over %s", *s.Max)
		}
	}
	cut := ""
	if int64(len(r.Body)) < r.Size && !c.grpc {
		cut = fmt.Sprintf(" (in its first %s)", quantity.Bytes(len(r.Body)))
	}
	if c.contains != "" && !bytes.Contains(r.Body, []byte(c.contains)) {
		return fmt.Sprintf("body does not contain %q%s", c.contains, cut)
	}
	if c.matches != nil && !c.matches.Match(r.Body) {
		return fmt.Sprintf("body does not match %q%s", c.matches, cut)
	}
	if len(c.fields) == 0 {
		return ""
	}
	var doc any
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		return "body is not JSON" + cut
	}
	for _, f := range c.fields {
		got, ok := lookup(doc, f.steps, c.grpc)
		switch {
		case !ok:
			return fmt.Sprintf("json %s missing", f.path)
		case !equal(got, f.want, c.grpc):
			return fmt.Sprintf("json %s is not %s", f.path, mustJSON(f.want))
		}
	}
	return ""
}

func (h headerCheck) verify(hdr http.Header) string {
	vals, present := hdr[h.name]
	switch {
	case h.present != nil && *h.present && !present:
		return fmt.Sprintf("header %s missing", h.name)
	case h.present != nil && !*h.present && present:
		return fmt.Sprintf("header %s present", h.name)
	case (h.equals != nil || h.matches != nil) && !present:
		return fmt.Sprintf("header %s missing", h.name)
	case h.equals != nil && vals[0] != *h.equals:
		return fmt.Sprintf("header %s is not %q", h.name, *h.equals)
	case h.matches != nil && !h.matches.MatchString(vals[0]):
		return fmt.Sprintf("header %s does not match %q", h.name, h.matches)
	}
	return ""
}

// equal compares decoded JSON values. In a gRPC message's JSON mapping
// 64-bit integers are strings ("42"), so there a number matches the
// string that spells it.
func equal(got, want any, proto bool) bool {
	if reflect.DeepEqual(got, want) {
		return true
	}
	s, isString := got.(string)
	n, isNumber := want.(float64)
	if !proto || !isString || !isNumber {
		return false
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == n
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// parsePath splits a field path: a JSON pointer (/orders/0/id, with ~1
// for / and ~0 for ~) or a dotted path (orders.0.id).
func parsePath(p string) ([]string, error) {
	if p == "" {
		return nil, errors.New("an empty field path; write a dotted path (orders.0.id) or a JSON pointer (/orders/0/id)")
	}
	if rest, ok := strings.CutPrefix(p, "/"); ok {
		steps := strings.Split(rest, "/")
		for i, s := range steps {
			steps[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
		}
		return steps, nil
	}
	steps := strings.Split(p, ".")
	if slices.Contains(steps, "") {
		return nil, fmt.Errorf("%q has an empty step; write a dotted path such as orders.0.id", p)
	}
	return steps, nil
}

// lookup follows steps into a decoded JSON document. A number steps into
// an array. For a gRPC message a step written as in the .proto
// (order_id) also finds the field's JSON name (orderId).
func lookup(doc any, steps []string, proto bool) (any, bool) {
	for _, s := range steps {
		switch v := doc.(type) {
		case map[string]any:
			next, ok := v[s]
			if !ok && proto {
				next, ok = v[jsonName(s)]
			}
			if !ok {
				return nil, false
			}
			doc = next
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			doc = v[i]
		default:
			return nil, false
		}
	}
	return doc, true
}

// jsonName is protobuf's JSON name of a field: lowerCamelCase of its
// proto name.
func jsonName(s string) string {
	var b strings.Builder
	up := false
	for _, r := range s {
		if r == '_' {
			up = true
			continue
		}
		if up && 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		up = false
		b.WriteRune(r)
	}
	return b.String()
}
