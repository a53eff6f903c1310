package runner

import (
	"encoding"
	"reflect"
	"strings"
	"time"
)

// configOf renders a fault's configuration as the scenario would spell it:
// keys by their YAML names, durations as "300ms", percentages as "50%".
func configOf(spec any) map[string]any {
	out := map[string]any{}
	v := reflect.Indirect(reflect.ValueOf(spec))
	if v.Kind() != reflect.Struct {
		return out
	}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			fv := v.Field(i)
			if opts == "inline" {
				walk(fv)
				continue
			}
			if fv.IsZero() {
				continue
			}
			out[name] = scalarOf(fv)
		}
	}
	walk(v)
	return out
}

func scalarOf(v reflect.Value) any {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		if b, err := m.MarshalText(); err == nil {
			return string(b)
		}
	}
	return v.Interface()
}
