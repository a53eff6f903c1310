package process

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/internal/suggest"
)

// Problem is one thing wrong with a process fault's parameters.
type Problem struct {
	Field, Msg string
}

// Parse reads a process fault of kind acting on the named process from its
// parameters (a JSON or YAML mapping, or nothing), as the admin API
// receives them: every problem is reported, with its field.
func Parse(kind, name string, params []byte) (Spec, []Problem) {
	spec, ok := NewSpec(kind)
	if !ok {
		msg := fmt.Sprintf("unknown process fault %q; known: %s", kind, strings.Join(Kinds(), ", "))
		if s, close := suggest.Closest(kind, Kinds()); close {
			msg = fmt.Sprintf("unknown process fault %q (did you mean %q?)", kind, s)
		}
		return nil, []Problem{{Msg: msg}}
	}
	var probs []Problem
	if len(strings.TrimSpace(string(params))) > 0 {
		n, err := strictyaml.ParseValue(params)
		if err != nil {
			return nil, []Problem{{Msg: "parameters: " + err.Error()}}
		}
		if n != nil {
			d := strictyaml.New()
			d.DecodeStruct(n, reflect.ValueOf(spec).Elem(), "")
			for _, p := range d.Problems {
				probs = append(probs, Problem{p.Path, p.Msg})
			}
		}
	}
	switch s := spec.(type) {
	case *Kill:
		s.Process = name
	case *Pause:
		s.Process = name
	case *Restart:
		s.Process = name
	}
	reported := map[string]bool{}
	for _, p := range probs {
		reported[p.Field] = true
	}
	spec.Check(func(field, msg string) {
		if !reported[field] {
			probs = append(probs, Problem{field, msg})
		}
	})
	if len(probs) > 0 {
		return nil, probs
	}
	return spec, nil
}
