package inject

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/internal/suggest"
)

// FieldProblem is one thing wrong with a fault's parameters.
type FieldProblem struct {
	Field string `json:"field"`
	Msg   string `json:"message"`
}

// SpecError lists every problem with a fault's kind or parameters.
type SpecError struct {
	Kind     string
	Problems []FieldProblem
}

func (e *SpecError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		if p.Field == "" {
			parts[i] = p.Msg
			continue
		}
		parts[i] = p.Field + ": " + p.Msg
	}
	return fmt.Sprintf("fault %s: %s", e.Kind, strings.Join(parts, "; "))
}

// ParseSpec builds a checked HTTP Spec of the named kind from its
// parameters written as JSON or YAML (`{"delay": "200ms", "percent": 30}`),
// with the same spellings and checks as a scenario file. Empty params mean
// the kind's defaults. Every problem is reported in one *SpecError.
func ParseSpec(kind string, params []byte) (Spec, error) {
	return ParseSpecFor(LayerHTTP, kind, params)
}

// ParseSpecFor is ParseSpec for the kinds of a layer.
func ParseSpecFor(layer Layer, kind string, params []byte) (Spec, error) {
	spec, ok := NewSpecFor(layer, kind)
	if !ok {
		known := KindsFor(layer)
		msg := fmt.Sprintf("unknown %s fault kind %q; known kinds: %s", layer, kind, strings.Join(known, ", "))
		if s, close := suggest.Closest(kind, known); close {
			msg = fmt.Sprintf("unknown fault kind %q (did you mean %q?)", kind, s)
		}
		var others []string
		for other := range kinds {
			if _, there := kinds[other][kind]; there && other != layer {
				others = append(others, string(other))
			}
		}
		if len(others) > 0 {
			slices.Sort(others)
			msg = fmt.Sprintf("%q is a fault of %s proxies; this proxy speaks %s (its kinds: %s)", kind, strings.Join(others, " and "), layer, strings.Join(known, ", "))
		}
		return nil, &SpecError{Kind: kind, Problems: []FieldProblem{{Msg: msg}}}
	}
	var probs []FieldProblem
	if len(strings.TrimSpace(string(params))) > 0 {
		n, err := strictyaml.ParseValue(params)
		if err != nil {
			return nil, &SpecError{Kind: kind, Problems: []FieldProblem{{Msg: "parameters: " + err.Error()}}}
		}
		if n != nil {
			d := strictyaml.New()
			d.DecodeStruct(n, reflect.ValueOf(spec).Elem(), "")
			for _, p := range d.Problems {
				probs = append(probs, FieldProblem{Field: p.Path, Msg: p.Msg})
			}
		}
	}
	reported := map[string]bool{}
	for _, p := range probs {
		reported[p.Field] = true
	}
	spec.Check(func(field, msg string) {
		if !reported[field] { // a field that did not decode is not checked twice
			probs = append(probs, FieldProblem{Field: field, Msg: msg})
		}
	})
	if len(probs) > 0 {
		return nil, &SpecError{Kind: kind, Problems: probs}
	}
	return spec, nil
}
