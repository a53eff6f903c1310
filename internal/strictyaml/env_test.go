package strictyaml

import "testing"

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"URL": "http://127.0.0.1:9", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, in, want, err string
	}{
		{"no variables", "plain $ text", "plain $ text", ""},
		{"set", "${URL}/x", "http://127.0.0.1:9/x", ""},
		{"default unused", "${URL:-other}", "http://127.0.0.1:9", ""},
		{"default used", "${NOPE:-fallback}", "fallback", ""},
		{"empty uses default", "${EMPTY:-d}", "d", ""},
		{"empty without default", "[${EMPTY}]", "[]", ""},
		{"escaped dollar", "$${URL}", "${URL}", ""},
		{"unset", "${NOPE}", "", "environment variable NOPE is not set"},
		{"unclosed", "${URL", "", "unclosed ${"},
		{"bad name", "${1X}", "", "invalid variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExpandEnv(tt.in, lookup)
			if tt.err != "" {
				if err == nil || !contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ExpandEnv(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
