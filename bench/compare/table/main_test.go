package main

import (
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
		ok   bool
	}{
		{"none", nil, 0, false},
		{"one", []float64{3}, 3, true},
		{"odd, unsorted", []float64{9, 1, 5}, 5, true},
		{"even: the mean of the middle two", []float64{4, 1, 2, 10}, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := median(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("median(%v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{999.4, "999"},
		{1000, "1,000"},
		{12345.6, "12,346"},
		{1234567, "1,234,567"},
		{-1234, "-1,234"},
	}
	for _, tt := range tests {
		if got := count(tt.in); got != tt.want {
			t.Errorf("count(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResults_Added(t *testing.T) {
	res, err := read(strings.NewReader(
		"1\tdirect\tp50\t0.30\n" +
			"1\tnginx\tp50\t0.40\n" +
			"2\tdirect\tp50\t0.50\n" +
			"2\tnginx\tp50\t0.55\n" +
			"3\tnginx\tp50\t9\n")) // no direct in round 3: not counted
	if err != nil {
		t.Fatal(err)
	}
	got, ok := res.added("nginx")
	if want := 0.075; !ok || got < want-1e-9 || got > want+1e-9 {
		t.Errorf("added(nginx) = %v, %v; want %v (the median of 0.10 and 0.05)", got, ok, want)
	}
}

func TestRead_Errors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"three fields", "1\tdirect\tsat\n", "line 1: want round, path, metric and value"},
		{"round", "x\tdirect\tsat\t1\n", `line 1: round "x"`},
		{"value", "\n1\tdirect\tsat\tfast\n", `line 2: value "fast"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("read(%q) = %v, want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	res, err := read(strings.NewReader(
		"1\tdirect\tsat\t20000\n1\tnginx\tsat\t10000\n1\tresctl-http\tsat\t5000\n" +
			"1\tdirect\tcpu\t40\n1\tnginx\tcpu\t50\n1\tresctl-http\tcpu\t150\n" +
			"1\tresctl-http\tcpu_rate\t1900\n" +
			"1\tdirect\tbulk\t3e9\n1\tresctl-tcp\tbulk\t1.5e9\n" +
			"1\tdirect\tsat_path_cores\t0.7\n1\tnginx\tsat_path_cores\t0.5\n1\tnginx\tsat_busy_cores\t1.9\n"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := write(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| resctl proxy http | 5,000 | 0.50× | 0.25× | 150 ms | 3.00× | 3.75× | — | — |",
		"| nginx (1 worker, keep-alive upstream) | 10,000 | 1.00× | 0.50× | 50.0 ms | 1.00× | 1.25× | — | — |",
		"- Round 1, resctl proxy http: vegeta sent 1900 req/s of the 2,000 asked.\n",
		"| TCP bulk, bytes/s (iperf3, one stream) | 3.00 GB/s | 1.50 GB/s | — | 0.50× | — |",
		"| nginx (1 worker, keep-alive upstream) | 0.50 | — | — | — | — | 1.90 |",
		"| direct (the target alone) | — | — | — | — | — | — |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
