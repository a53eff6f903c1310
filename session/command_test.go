package session

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse_Faults(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Command
	}{
		{"latency with delay and percent", "latency orders 200ms 30%",
			Command{Verb: "latency", Proxy: "orders", Params: map[string]any{"delay": "200ms", "percent": 30.0}}},
		{"abort with status, percent and a selector", "abort orders 503 10% path=/api",
			Command{Verb: "abort", Proxy: "orders", Params: map[string]any{"status": 503, "percent": 10.0, "path": "/api"}}},
		{"gRPC abort by code", "abort pay UNAVAILABLE",
			Command{Verb: "abort", Proxy: "pay", Params: map[string]any{"code": "UNAVAILABLE"}}},
		{"blackhole's duration is its TTL", "blackhole db 20s",
			Command{Verb: "blackhole", Proxy: "db", Params: map[string]any{}, TTL: 20 * time.Second}},
		{"runtime fault with count and TTL", "goroutines target 10000 30s",
			Command{Verb: "goroutines", Proxy: "target", Params: map[string]any{"count": 10000}, TTL: 30 * time.Second}},
		{"a second duration is the TTL", "latency web 1s 2m",
			Command{Verb: "latency", Proxy: "web", Params: map[string]any{"delay": "1s"}, TTL: 2 * time.Minute}},
		{"for= and id=", "latency web 5ms for=10s id=slow",
			Command{Verb: "latency", Proxy: "web", Params: map[string]any{"delay": "5ms"}, TTL: 10 * time.Second, ID: "slow"}},
		{"a size", "bandwidth web 64KiB",
			Command{Verb: "bandwidth", Proxy: "web", Params: map[string]any{"rate": "64KiB"}}},
		{"quoted values keep spaces", `header web name="X-A b"`,
			Command{Verb: "header", Proxy: "web", Params: map[string]any{"name": "X-A b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.line)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.line, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got  %#v\n want %#v", tt.line, got, tt.want)
			}
		})
	}
}

func TestParse_Verbs(t *testing.T) {
	for line, want := range map[string]Command{
		"load 100/s 30s /api/orders": {Verb: "load", Args: []string{"100/s", "30s", "/api/orders"}},
		"load stop":                  {Verb: "load", Args: []string{"stop"}},
		`mark "deploy v2"`:           {Verb: "mark", Args: []string{"deploy v2"}},
		"mark deploy v2":             {Verb: "mark", Args: []string{"deploy v2"}},
		"clear":                      {Verb: "clear", Args: []string{}},
		"clear latency":              {Verb: "clear", Args: []string{"latency"}},
		"save s.yaml":                {Verb: "save", Args: []string{"s.yaml"}},
		"exit":                       {Verb: "quit", Args: []string{}},
		"wait load":                  {Verb: "wait", Args: []string{"load"}},
		"  # a comment":              {},
		"":                           {},
	} {
		got, err := Parse(line)
		if err != nil {
			t.Errorf("Parse(%q): %v", line, err)
			continue
		}
		if got.Verb != want.Verb || (len(want.Args) > 0 && !reflect.DeepEqual(got.Args, want.Args)) {
			t.Errorf("Parse(%q) = %+v, want %+v", line, got, want)
		}
	}
}

func TestParse_Errors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"latncy web 1s", `unknown command "latncy": did you mean latency?`},
		{"sav s.yaml", "did you mean save?"},
		{"frobnicate", `unknown command "frobnicate" (type help`},
		{"latency", "latency needs a proxy name first"},
		{"latency web 1s 2s 3s", "a third duration"},
		{"latency web banana", `cannot place "banana"`},
		{"latency web 10% 20%", "sets percent a second time"},
		{"latency web for=-1s", "not a positive duration"},
		{"latency web Delay=1s", `"Delay=1s" is not a parameter`},
		{"load 100/s", "load needs a rate and a duration"},
		{"load fast 10s", `rate "fast" is not a rate above zero`},
		{"load 10/s soon", "not a positive duration"},
		{"load 10/s 10s api", "must start with /"},
		{"mark", "mark needs a text"},
		{`mark "open`, "unclosed quote"},
		{"save", "save needs one file name"},
		{"quit now", "quit takes no arguments"},
		{"wait forever", "not a positive duration"},
		{strings.Repeat("x", MaxLine+1), "at most 4096"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.line)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%.40q) = %v, want an error with %q", tt.line, err, tt.want)
		}
	}
}

func TestNameCuts(t *testing.T) {
	f := func(id string) []FaultSpan { return []FaultSpan{{ID: id}} }
	cuts := []cut{{}, {Faults: f("latency")}, {}, {Faults: append(f("latency"), f("Abort 2")...)}, {}, {Faults: f("latency")}}
	nameCuts(cuts)
	var got []string
	for _, c := range cuts {
		got = append(got, c.Name)
	}
	want := []string{"baseline", "latency", "recovery", "latency+abort-2", "recovery-2", "latency-2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
}

func TestNiceBound(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		3 * time.Millisecond:    500 * time.Millisecond, // the 250 ms floor, rounded up
		200 * time.Millisecond:  500 * time.Millisecond,
		300 * time.Millisecond:  time.Second,
		1200 * time.Millisecond: 5 * time.Second,
	} {
		if got := niceBound(d); got != want {
			t.Errorf("niceBound(%v) = %v, want %v", d, got, want)
		}
	}
}

func TestYAMLScalar(t *testing.T) {
	for in, want := range map[string]string{
		"/api/orders": "/api/orders", "200ms": "200ms", "yes": `"yes"`, "": `""`,
		"12": `"12"`, "a b": `"a b"`, "50%": "50%", "x: y": `"x: y"`,
	} {
		if got := yamlScalar(in); got != want {
			t.Errorf("yamlScalar(%q) = %s, want %s", in, got, want)
		}
	}
}
