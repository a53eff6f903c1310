package check

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"

	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/quantity"
)

// DefaultBodyLimit is how much of a response body the HTTP load keeps for
// body_contains, body_matches and json checks; the rest is read and
// counted (body_size sees the whole body) but not kept, so a huge
// response cannot make a check cost unbounded memory.
const DefaultBodyLimit = 1 << 20

// Spec is a request's `expect`: what its response must be for the request
// to count as a success. Every key is optional; an empty Spec checks only
// what the load always checks (a transport error or, for HTTP, a status of
// 400 or above fails a request).
type Spec struct {
	// Status lists the statuses a response may have: HTTP codes (200,
	// 404), or for gRPC code names (OK, NOT_FOUND or NotFound). Given, it
	// replaces the default rule, so an expected 404 is a success.
	Status []Code `yaml:"status"`
	// Headers are response headers by name, each present, absent, equal
	// to a value or matching a regular expression (HTTP only).
	Headers map[string]Header `yaml:"headers"`
	// BodySize bounds the body's length: an exact size (body_size: 120)
	// or {min, max} (HTTP only).
	BodySize *Size `yaml:"body_size"`
	// BodyContains is text the body must contain; BodyMatches a regular
	// expression it must match (HTTP only).
	BodyContains string `yaml:"body_contains"`
	// BodyMatches is a regular expression the body must match (HTTP only).
	BodyMatches string `yaml:"body_matches"`
	// JSON maps a field of the JSON body (for gRPC: of the response
	// message, in its JSON mapping) to the value it must have. A field is a
	// dotted path (orders.0.id) or a JSON pointer (/orders/0/id).
	JSON map[string]Value `yaml:"json"`
}

// Code is a status as written in a scenario: an HTTP code (200) or a gRPC
// code's name (NOT_FOUND).
type Code string

// Header is a check on one response header.
type Header struct {
	// Present, when set, says whether the header must be there at all.
	Present *bool `yaml:"present"`
	// Equals is the exact value it must have; Matches a regular
	// expression its value must match.
	Equals *string `yaml:"equals"`
	// Matches is a regular expression the header's value must match.
	Matches string `yaml:"matches"`
}

// Size bounds a body's length: Exact, or Min and Max (either may be left
// out).
type Size struct {
	// Min is the shortest the body may be.
	Min *quantity.Bytes `yaml:"min"`
	// Max is the longest the body may be.
	Max   *quantity.Bytes `yaml:"max"`
	Exact *quantity.Bytes `yaml:"-"`
}

// DecodeNode implements strictyaml.NodeDecoder: `body_size: 120` is an
// exact size, a map gives min and max.
func (s *Size) DecodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		var b quantity.Bytes
		if err := b.UnmarshalText([]byte(n.Value)); err != nil {
			d.Add(strictyaml.NodePos(n), path, "%v", err)
			return
		}
		s.Exact = &b
		return
	}
	d.DecodeStruct(n, reflect.ValueOf(s).Elem(), path)
}

// Value is the value a JSON field must have, written as YAML and kept as
// JSON.
type Value struct {
	JSON string
}

// DecodeNode implements strictyaml.NodeDecoder.
func (v *Value) DecodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	var x any
	if err := n.Decode(&x); err != nil {
		d.Add(strictyaml.NodePos(n), path, "%v", err)
		return
	}
	b, err := json.Marshal(x)
	if err != nil {
		d.Add(strictyaml.NodePos(n), path, "cannot be a JSON value: %v", err)
		return
	}
	v.JSON = string(b)
}

// Check reports every problem with the spec; grpc says whether it checks
// gRPC calls rather than HTTP responses. field names the key at fault
// below expect (status[1], headers.Content-Type.matches).
func (s *Spec) Check(grpc bool, problem func(field, msg string)) {
	for i, st := range s.Status {
		field := fmt.Sprintf("status[%d]", i)
		if grpc {
			if _, ok := grpcCode(string(st)); !ok {
				problem(field, fmt.Sprintf("%q is not a gRPC status code; use a name such as OK, NOT_FOUND or UNAVAILABLE", st))
			}
			continue
		}
		if c, err := strconv.Atoi(string(st)); err != nil || c < 100 || c > 599 {
			problem(field, fmt.Sprintf("%q is not an HTTP status code (100 to 599)", st))
		}
	}
	if grpc {
		for key, set := range map[string]bool{"headers": len(s.Headers) > 0, "body_size": s.BodySize != nil, "body_contains": s.BodyContains != "", "body_matches": s.BodyMatches != ""} {
			if set {
				problem(key, "checks HTTP responses; a gRPC call's expect takes status and json")
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Headers)) {
		h := s.Headers[name]
		field := "headers." + name
		switch {
		case h.Present == nil && h.Equals == nil && h.Matches == "":
			problem(field, "say what the header must be: present: true, equals: VALUE or matches: REGEXP")
		case h.Present != nil && !*h.Present && (h.Equals != nil || h.Matches != ""):
			problem(field, "present: false cannot go with equals or matches")
		}
		checkRegexp(field+".matches", h.Matches, problem)
	}
	if b := s.BodySize; b != nil {
		switch {
		case b.Exact != nil && *b.Exact < 0:
			problem("body_size", "must not be negative")
		case b.Exact == nil && b.Min == nil && b.Max == nil:
			problem("body_size", "give a size (body_size: 120) or min and max")
		case b.Min != nil && b.Max != nil && *b.Min > *b.Max:
			problem("body_size", fmt.Sprintf("min %s is above max %s", *b.Min, *b.Max))
		}
	}
	checkRegexp("body_matches", s.BodyMatches, problem)
	for _, p := range slices.Sorted(maps.Keys(s.JSON)) {
		if _, err := parsePath(p); err != nil {
			problem("json."+p, err.Error())
		}
	}
}

func checkRegexp(field, expr string, problem func(field, msg string)) {
	if expr == "" {
		return
	}
	if _, err := regexp.Compile(expr); err != nil {
		problem(field, fmt.Sprintf("not a regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: ")))
	}
}

// grpcCode reads a gRPC status code's name: as the protocol spells it
// (NOT_FOUND) or as grpc-go does (NotFound).
func grpcCode(name string) (codes.Code, bool) {
	var c codes.Code
	if err := c.UnmarshalJSON([]byte(strconv.Quote(strings.ToUpper(name)))); err == nil {
		return c, true
	}
	for i := codes.OK; i <= codes.Unauthenticated; i++ {
		if strings.EqualFold(i.String(), name) {
			return i, true
		}
	}
	return 0, false
}

// canonicalHeader is how a header's name is looked up.
func canonicalHeader(name string) string { return http.CanonicalHeaderKey(name) }
