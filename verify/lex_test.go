package verify

import "testing"

func TestLex_Numbers(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		value float64
		unit  string // "" for a bare number
		text  string
	}{
		{"integer", "123", 123, "", "123"},
		{"fraction", "0.5", 0.5, "", "0.5"},
		{"leading dot", ".5", 0.5, "", ".5"},
		{"exponent", "1e3", 1000, "", "1e3"},
		{"signed exponent", "2.5E-1", 0.25, "", "2.5E-1"},
		{"milliseconds exact", "150ms", 0.15, "ms", "150ms"},
		{"percent exact", "99.9%", 0.999, "%", "99.9%"},
		{"percent with exponent", "1e2%", 1, "%", "1e2%"},
		{"nanoseconds", "250ns", 250e-9, "ns", "250ns"},
		{"micro sign", "850µs", 850e-6, "µs", "850µs"},
		{"greek mu", "850μs", 850e-6, "μs", "850μs"},
		{"ascii micro", "850us", 850e-6, "us", "850us"},
		{"seconds", "1.25s", 1.25, "s", "1.25s"},
		{"minutes", "1.5m", 90, "m", "1.5m"},
		{"hours", "2h", 7200, "h", "2h"},
		{"rate", "200/s", 200, "/s", "200/s"},
		{"kibibytes", "1KiB", 1024, "KiB", "1KiB"},
		{"mebibytes", "512MiB", 512 << 20, "MiB", "512MiB"},
		{"gibibytes", "2GiB", 2 << 30, "GiB", "2GiB"},
		{"kilobytes", "1KB", 1e3, "KB", "1KB"},
		{"megabytes", "1.5MB", 1.5e6, "MB", "1.5MB"},
		{"gigabytes", "3GB", 3e9, "GB", "3GB"},
		{"division not rate", "100/success_rate", 100, "", "100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := lexer{src: []rune(tt.src)}
			tok, err := l.next()
			if err != nil {
				t.Fatalf("next() error: %v", err)
			}
			if tok.kind != tokNumber {
				t.Fatalf("kind = %v, want number", tok.kind)
			}
			if tok.value != tt.value {
				t.Errorf("value = %v, want %v", tok.value, tt.value)
			}
			unit := ""
			if tok.unit != nil {
				unit = tok.unit.name
			}
			if unit != tt.unit {
				t.Errorf("unit = %q, want %q", unit, tt.unit)
			}
			if tok.text != tt.text {
				t.Errorf("text = %q, want %q", tok.text, tt.text)
			}
		})
	}
}

func TestLex_Operators(t *testing.T) {
	src := "( ) or || and && not ! < <= > >= == != + - * / { } , : = =~ !~ during over"
	want := []tokenKind{
		tokLParen, tokRParen, tokOr, tokOr, tokAnd, tokAnd, tokNot, tokNot,
		tokLT, tokLE, tokGT, tokGE, tokEQ, tokNE, tokPlus, tokMinus, tokStar, tokSlash,
		tokLBrace, tokRBrace, tokComma, tokColon, tokAssign, tokMatch, tokNotMatch, tokDuring, tokOver, tokEOF,
	}
	l := lexer{src: []rune(src)}
	for i, w := range want {
		tok, err := l.next()
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if tok.kind != w {
			t.Errorf("token %d (%q): kind = %v, want %v", i, tok.text, tok.kind, w)
		}
	}
}

func TestLex_Strings(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"plain", `"open"`, "open"},
		{"empty", `""`, ""},
		{"escaped quote", `"a\"b"`, `a"b`},
		{"escaped backslash", `"a\\.b"`, `a\.b`},
		{"unicode", `"żółw"`, "żółw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := lexer{src: []rune(tt.src)}
			tok, err := l.next()
			if err != nil {
				t.Fatalf("next() error: %v", err)
			}
			if tok.kind != tokString || tok.str != tt.want || tok.text != tt.src {
				t.Errorf("token = %v %q (text %q), want string %q", tok.kind, tok.str, tok.text, tt.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"digit neighbour wins tie", "p98", "p99"},
		{"nearest digit", "p91", "p90"},
		{"missing char", "p9", "p90"},
		{"transposed", "sucess_rate", "success_rate"},
		{"case", "P99", "p99"},
		{"too far", "latency", ""},
		{"mostly replaced", "s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := suggest(tt.in, seriesNames)
			if got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
