package scenario

import (
	"slices"
	"testing"
)

func TestParse_OutputFormats(t *testing.T) {
	const head = "name: x\ntarget: {builtin: demo}\nload: {rate: 1/s, requests: [{path: /}]}\nphases: [{name: p, duration: 1s}]\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"default: json and html", head, []string{"json", "html"}},
		{"given formats replace the default", head + "output: {formats: [json]}\n", []string{"json"}},
		{"given with html", head + "output: {formats: [junit, html]}\n", []string{"junit", "html"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("s.yaml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Output.Formats, tt.want) {
				t.Errorf("formats = %v, want %v", s.Output.Formats, tt.want)
			}
		})
	}
}
