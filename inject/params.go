package inject

import (
	"encoding"
	"reflect"
	"strings"
	"time"
)

// Params renders a spec's parameters as a scenario would spell them: keys by
// their YAML names, durations as "300ms", percentages as "50%", sizes as
// "64KiB"; unset (zero) values are left out. ParseSpec reads the result
// back to an equal spec, so the admin API can show a fault as it can be
// written.
func Params(spec Spec) map[string]any {
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
			out[name] = paramValue(fv)
		}
	}
	walk(v)
	return out
}

func paramValue(v reflect.Value) any {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	if v.Kind() == reflect.Struct {
		if s, ok := v.Interface().(Schedule); ok {
			return scheduleParams(s)
		}
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		if b, err := m.MarshalText(); err == nil {
			return string(b)
		}
	}
	return v.Interface()
}

func scheduleParams(s Schedule) map[string]any {
	out := map[string]any{}
	if s.First > 0 {
		out["first"] = s.First
	}
	if s.Every > 0 {
		out["every"] = s.Every
	}
	if s.On > 0 {
		out["on"], out["off"] = s.On.String(), s.Off.String()
	}
	if !s.Ramp.IsZero() {
		out["ramp"] = map[string]any{"from": s.Ramp.From.String(), "to": s.Ramp.To.String(), "over": s.Ramp.Over.String()}
	}
	return out
}
