package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"rate", "requests", "timeout", "phases", "p99"}
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"one typo", "rat", "rate", true},
		{"transposition", "phsaes", "phases", true},
		{"too far", "colour", "", false},
		{"short names allow one edit", "p98", "p99", true},
		{"short names not two", "p8", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Closest(tt.in, known)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("Closest(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
