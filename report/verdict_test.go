package report

import "testing"

func TestReport_Verdict(t *testing.T) {
	for _, tt := range []struct {
		name string
		r    Report
		want Verdict
	}{
		{"passed", Report{Passed: true}, VerdictPassed},
		{"failed", Report{}, VerdictFailed},
		{"error first", Report{Passed: true, Error: "x", Interrupted: true}, VerdictError},
		{"interrupted", Report{Interrupted: true}, VerdictInterrupted},
		{"aborted", Report{Aborted: "x"}, VerdictAborted},
		{"a session with no SLAs is recorded, not passed", Report{Passed: true, Session: true}, VerdictRecorded},
		{"a session with SLAs is judged", Report{Passed: true, Session: true, SLAs: []SLA{{Passed: true}}}, VerdictPassed},
	} {
		if got := tt.r.Verdict(); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
