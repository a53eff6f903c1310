package process

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/quantity"
)

func TestSchedule_Offsets(t *testing.T) {
	tests := []struct {
		name  string
		s     Schedule
		phase time.Duration
		want  []time.Duration
	}{
		{"once at the start", Schedule{}, 5 * time.Second, []time.Duration{0}},
		{"once later", Schedule{At: 2 * time.Second}, 5 * time.Second, []time.Duration{2 * time.Second}},
		{"every, to the phase's end", Schedule{At: time.Second, Every: 2 * time.Second}, 6 * time.Second,
			[]time.Duration{time.Second, 3 * time.Second, 5 * time.Second}},
		{"at the end: never", Schedule{At: 5 * time.Second}, 5 * time.Second, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Offsets(tt.phase); !slices.Equal(got, tt.want) {
				t.Errorf("Offsets(%v) = %v, want %v", tt.phase, got, tt.want)
			}
		})
	}
}

func TestSpec_Check(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want []string // "field: message" prefixes
	}{
		{"kill with defaults", &Kill{Process: "target"}, nil},
		{"kill, everything wrong", &Kill{Signal: "SIGSTOP", Grace: time.Hour, RestartAfter: time.Second, StayDown: true, Schedule: Schedule{At: -1, Every: time.Millisecond}},
			[]string{"process: is required", `signal: unknown signal "SIGSTOP"`, "grace: must be between", "restart_after: needs restart: true", "at: must not be negative", "every: is at least 500ms"}},
		{"restart and stay down", &Kill{Process: "db", Restart: true, StayDown: true}, []string{"stay_down: a process killed with restart: true"}},
		{"pause without duration", &Pause{Process: "db"}, []string{"duration: is required"}},
		{"pause as long as its period", &Pause{Process: "db", Duration: 2 * time.Second, Schedule: Schedule{Every: 2 * time.Second}},
			[]string{"duration: 2s is not shorter than every: 2s"}},
		{"restart", &Restart{Process: "db", Signal: "SIGINT"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			tt.spec.Check(func(field, msg string) { got = append(got, field+": "+msg) })
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want %d: %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d = %q, want it to start %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestNewSpec(t *testing.T) {
	for _, k := range Kinds() {
		s, ok := NewSpec(k)
		if !ok || s.Kind() != k {
			t.Errorf("NewSpec(%q) = %v, %v", k, s, ok)
		}
	}
	if _, ok := NewSpec("stop"); ok {
		t.Error(`NewSpec("stop"): a kind that does not exist`)
	}
	if k := (&Kill{}).SignalName(); k != DefaultKillSignal {
		t.Errorf("kill's default signal %s", k)
	}
	if g := (&Restart{}).GraceOrDefault(); g != DefaultGrace {
		t.Errorf("restart's default grace %v", g)
	}
}

func TestSchedule_Instances(t *testing.T) {
	tests := []struct {
		name    string
		percent float64
		n       int
		all     bool
		want    int
	}{
		{"one by default", 0, 3, false, 1},
		{"every one by default for restart", 0, 3, true, 3},
		{"a share, rounded up", 50, 3, false, 2},
		{"at least one", 1, 3, false, 1},
		{"all", 100, 4, false, 4},
		{"none to take", 50, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Schedule{Percent: quantity.Percent(tt.percent)}
			if got := s.Instances(tt.n, tt.all); got != tt.want {
				t.Errorf("Instances(%d, %v) with %v%% = %d, want %d", tt.n, tt.all, tt.percent, got, tt.want)
			}
		})
	}
}
