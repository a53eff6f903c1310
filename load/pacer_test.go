package load_test

import (
	"math"
	"testing"
	"time"

	"github.com/resctl/resctl/load"
)

// threeSteps is 10s at 50/s, 10s at 100/s and 5s at 20/s: 500, 1000 and 100
// hits.
var threeSteps = []load.Step{
	{Name: "baseline", Duration: 10 * time.Second, Rate: 50},
	{Name: "fault", Duration: 10 * time.Second, Rate: 100},
	{Name: "recovery", Duration: 5 * time.Second, Rate: 20},
}

func TestPacer_Duration(t *testing.T) {
	tests := []struct {
		name  string
		steps []load.Step
		want  time.Duration
	}{
		{"no steps", nil, 0},
		{"one step", []load.Step{{Duration: time.Second, Rate: 100}}, time.Second},
		{"three steps", threeSteps, 25 * time.Second},
		{"a pause counts", []load.Step{{Duration: time.Second, Rate: 1}, {Duration: 2 * time.Second}}, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := load.NewPacer(tt.steps).Duration(); got != tt.want {
				t.Errorf("Duration() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPacer_Hits(t *testing.T) {
	tests := []struct {
		name  string
		steps []load.Step
		at    time.Duration
		want  float64
	}{
		{"no steps", nil, time.Second, 0},
		{"before the start", threeSteps, -time.Second, 0},
		{"at the start", threeSteps, 0, 0},
		{"inside the first step", threeSteps, time.Second, 50},
		{"end of the first step", threeSteps, 10 * time.Second, 500},
		{"inside the second step", threeSteps, 15 * time.Second, 1000},
		{"end of the second step", threeSteps, 20 * time.Second, 1500},
		{"inside the last step", threeSteps, 22500 * time.Millisecond, 1550},
		{"end of the schedule", threeSteps, 25 * time.Second, 1600},
		{"after the end", threeSteps, time.Hour, 1600},
		{"during a pause", []load.Step{{Duration: time.Second, Rate: 10}, {Duration: 2 * time.Second}, {Duration: time.Second, Rate: 10}}, 2 * time.Second, 10},
		{"after a pause", []load.Step{{Duration: time.Second, Rate: 10}, {Duration: 2 * time.Second}, {Duration: time.Second, Rate: 10}}, 3500 * time.Millisecond, 15},
		{"fractional rate", []load.Step{{Duration: 2 * time.Second, Rate: 1.5}}, time.Second, 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := load.NewPacer(tt.steps).Hits(tt.at); got != tt.want {
				t.Errorf("Hits(%v) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

func TestPacer_Rate(t *testing.T) {
	tests := []struct {
		name  string
		steps []load.Step
		at    time.Duration
		want  float64
	}{
		{"no steps", nil, 0, 0},
		{"before the start", threeSteps, -time.Nanosecond, 0},
		{"at the start", threeSteps, 0, 50},
		{"last instant of the first step", threeSteps, 10*time.Second - time.Nanosecond, 50},
		{"second step starts inclusive", threeSteps, 10 * time.Second, 100},
		{"third step", threeSteps, 20 * time.Second, 20},
		{"end of the schedule", threeSteps, 25 * time.Second, 0},
		{"after the end", threeSteps, time.Hour, 0},
		{"pause", []load.Step{{Duration: time.Second, Rate: 10}, {Duration: 2 * time.Second}}, 1500 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := load.NewPacer(tt.steps).Rate(tt.at); got != tt.want {
				t.Errorf("Rate(%v) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

func TestPacer_Pace(t *testing.T) {
	pause := []load.Step{{Duration: time.Second, Rate: 10}, {Duration: 2 * time.Second}, {Duration: time.Second, Rate: 10}}
	tests := []struct {
		name     string
		steps    []load.Step
		elapsed  time.Duration
		hits     uint64
		wantWait time.Duration
		wantStop bool
	}{
		{"first hit at once", threeSteps, 0, 0, 0, false},
		{"second hit one interval later", threeSteps, 0, 1, 20 * time.Millisecond, false},
		{"wait is due minus elapsed", threeSteps, 5 * time.Millisecond, 1, 15 * time.Millisecond, false},
		{"on time", threeSteps, 20 * time.Millisecond, 1, 0, false},
		{"behind: send at once", threeSteps, time.Second, 1, 0, false},
		{"last hit of the first step", threeSteps, 0, 499, 9980 * time.Millisecond, false},
		{"first hit of the second step on its start", threeSteps, 0, 500, 10 * time.Second, false},
		{"second step at its own rate", threeSteps, 10 * time.Second, 501, 10 * time.Millisecond, false},
		{"last hit of the second step", threeSteps, 0, 1499, 19990 * time.Millisecond, false},
		{"first hit of the last step", threeSteps, 0, 1500, 20 * time.Second, false},
		{"last hit of the schedule", threeSteps, 0, 1599, 24950 * time.Millisecond, false},
		{"all hits sent", threeSteps, 0, 1600, 0, true},
		{"all hits sent, late", threeSteps, time.Hour, 1600, 0, true},
		{"far beyond the schedule", threeSteps, 0, 1 << 40, 0, true},
		{"no steps", nil, 0, 0, 0, true},
		{"only a pause", []load.Step{{Duration: time.Second}}, 0, 0, 0, true},
		{"a pause is waited out", pause, 950 * time.Millisecond, 10, 2050 * time.Millisecond, false},
		{"fractional rate rounds the due time up", []load.Step{{Duration: time.Second, Rate: 3}}, 0, 1, 333333334 * time.Nanosecond, false},
		{"a fractional last hit is still sent", []load.Step{{Duration: time.Second, Rate: 2.5}}, 0, 2, 800 * time.Millisecond, false},
		{"then the schedule stops", []load.Step{{Duration: time.Second, Rate: 2.5}}, 0, 3, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait, stop := load.NewPacer(tt.steps).Pace(tt.elapsed, tt.hits)
			if wait != tt.wantWait || stop != tt.wantStop {
				t.Errorf("Pace(%v, %d) = %v, %v; want %v, %v", tt.elapsed, tt.hits, wait, stop, tt.wantWait, tt.wantStop)
			}
		})
	}
}

func TestPacer_StepOf(t *testing.T) {
	p := load.NewPacer(threeSteps)
	tests := []struct {
		hit  uint64
		want int
	}{
		{0, 0}, {499, 0}, {500, 1}, {1499, 1}, {1500, 2}, {1599, 2},
		{1600, 2}, // beyond the schedule: the last step
	}
	for _, tt := range tests {
		if got := p.StepOf(tt.hit); got != tt.want {
			t.Errorf("StepOf(%d) = %d, want %d", tt.hit, got, tt.want)
		}
	}
}

// TestPacer_Simulated runs whole schedules against a fake clock, the way
// vegeta's attack loop drives a pacer: ask, wait (here: jump the clock),
// send, count. Nothing sleeps.
func TestPacer_Simulated(t *testing.T) {
	tests := []struct {
		name  string
		steps []load.Step
		// stall makes the generator fall behind: after this many hits
		// the clock jumps by stallFor beyond the due time.
		stall    uint64
		stallFor time.Duration
		want     []int // hits per step
	}{
		{"one step", []load.Step{{Duration: time.Second, Rate: 100}}, 0, 0, []int{100}},
		{"three steps at different rates", threeSteps, 0, 0, []int{500, 1000, 100}},
		{"a generator that falls behind catches up", threeSteps, 700, 3 * time.Second, []int{500, 1000, 100}},
		{"a pause sends nothing", []load.Step{{Duration: time.Second, Rate: 10}, {Duration: 2 * time.Second}, {Duration: time.Second, Rate: 10}}, 0, 0, []int{10, 0, 10}},
		{"odd rates", []load.Step{{Duration: 3 * time.Second, Rate: 7}, {Duration: 1500 * time.Millisecond, Rate: 1000}, {Duration: time.Second, Rate: 3}}, 0, 0, []int{21, 1500, 3}},
		{"high rate", []load.Step{{Duration: 2 * time.Second, Rate: 20_000}}, 0, 0, []int{40_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := load.NewPacer(tt.steps)
			var starts []time.Duration
			var at time.Duration
			for _, s := range tt.steps {
				starts = append(starts, at)
				at += s.Duration
			}
			total := 0
			for _, n := range tt.want {
				total += n
			}

			got := make([]int, len(tt.steps))
			var elapsed, prevDue time.Duration
			var hits uint64
			for range total + 10 { // bounded: the pacer must stop by itself
				wait, stop := p.Pace(elapsed, hits)
				if stop {
					break
				}
				due, _ := p.Pace(0, hits) // asked at the start: the due time itself
				if want := max(due-elapsed, 0); wait != want {
					t.Fatalf("hit %d due at %v: Pace at %v says wait %v, want %v", hits, due, elapsed, wait, want)
				}
				elapsed += wait
				if tt.stall > 0 && hits == tt.stall {
					elapsed += tt.stallFor
				}
				step := p.StepOf(hits)
				if hits > 0 && step == p.StepOf(hits-1) {
					// Evenly spaced within a step, to the nanosecond.
					gap, want := due-prevDue, time.Duration(float64(time.Second)/tt.steps[step].Rate)
					if gap < want-time.Nanosecond || gap > want+time.Nanosecond {
						t.Fatalf("hit %d due %v after hit %d, want %v", hits, gap, hits-1, want)
					}
				}
				if hits > 0 && due < prevDue {
					t.Fatalf("hit %d due at %v, before hit %d at %v", hits, due, hits-1, prevDue)
				}
				prevDue = due
				if due < starts[step] || due >= starts[step]+tt.steps[step].Duration {
					t.Fatalf("hit %d due at %v, outside its step %d [%v, %v)", hits, due, step, starts[step], starts[step]+tt.steps[step].Duration)
				}
				got[step]++
				hits++
			}
			if int(hits) != total {
				t.Errorf("%d hits before stop, want %d", hits, total)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("step %d: %d hits, want %d", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// shaped is a ramp up, stairs, a spike and a ramp down: every shape the
// pacer knows, back to back.
var shaped = []load.Step{
	load.Ramp("up", 10*time.Second, 0, 100),                                  // 500 hits
	load.Stairs("stairs", 6*time.Second, 10, 20, 30),                         // 20+40+60 = 120
	load.Spike("spike", 10*time.Second, 10, 200, 4*time.Second, time.Second), // 90+200 = 290
	load.Ramp("down", 4*time.Second, 50, 0),                                  // 100
}

func TestPacer_shapes(t *testing.T) {
	p := load.NewPacer(shaped)
	tests := []struct {
		name      string
		at        time.Duration
		hits, rps float64
	}{
		{"ramp start", 0, 0, 0},
		{"ramp middle", 5 * time.Second, 125, 50},
		{"ramp end", 10 * time.Second, 500, 10}, // the stairs' first rate
		{"second stair", 13 * time.Second, 500 + 20 + 20, 20},
		{"before the spike", 19 * time.Second, 620 + 30, 10},
		{"in the spike", 20500 * time.Millisecond, 620 + 40 + 100, 200},
		{"after the spike", 22 * time.Second, 620 + 40 + 200 + 10, 10},
		{"ramp down middle", 28 * time.Second, 910 + 75, 25},
		{"end", 30 * time.Second, 1010, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Hits(tt.at); math.Abs(got-tt.hits) > 1e-6 {
				t.Errorf("Hits(%v) = %v, want %v", tt.at, got, tt.hits)
			}
			if got := p.Rate(tt.at); math.Abs(got-tt.rps) > 1e-6 {
				t.Errorf("Rate(%v) = %v, want %v", tt.at, got, tt.rps)
			}
		})
	}
	if got := p.Duration(); got != 30*time.Second {
		t.Errorf("Duration() = %v, want 30s", got)
	}
}

// Every hit of a shaped schedule is due when the schedule has accumulated
// exactly that many hits, in the step it counts in, and hits come in order.
func TestPacer_TimeOfHitInvertsHits(t *testing.T) {
	p := load.NewPacer(shaped)
	total := uint64(math.Round(p.Hits(p.Duration())))
	var prev time.Duration
	for k := range total {
		at, ok := p.TimeOfHit(k)
		if !ok {
			t.Fatalf("TimeOfHit(%d) beyond the schedule of %d hits", k, total)
		}
		if at < prev {
			t.Fatalf("TimeOfHit(%d) = %v, before hit %d at %v", k, at, k-1, prev)
		}
		prev = at
		// Rounded up to the nanosecond: the schedule holds k hits at at,
		// and not yet k+1.
		if h := p.Hits(at); h < float64(k)-1e-6 || h >= float64(k)+1 {
			t.Fatalf("Hits(TimeOfHit(%d) = %v) = %v", k, at, h)
		}
		if step, want := p.StepOf(k), stepAt(at); step != want {
			t.Fatalf("StepOf(%d) = %d, but it is due at %v, in step %d", k, step, at, want)
		}
	}
	if _, ok := p.TimeOfHit(total); ok {
		t.Errorf("TimeOfHit(%d) is inside a schedule of %d hits", total, total)
	}
}

func stepAt(t time.Duration) int {
	var end time.Duration
	for i, s := range shaped {
		end += s.Duration
		if t < end {
			return i
		}
	}
	return len(shaped) - 1
}

func TestSpike_clipped(t *testing.T) {
	s := load.Spike("s", 10*time.Second, 5, 50, 8*time.Second, 5*time.Second)
	var d time.Duration
	for _, seg := range s.Segments {
		d += seg.Duration
	}
	if d != 10*time.Second || len(s.Segments) != 2 {
		t.Errorf("Spike past the end = %+v, want two segments adding up to 10s", s.Segments)
	}
}

// Shards of a schedule send its hits between them, interleaved: together
// exactly the schedule's hits at the schedule's times, none twice.
func TestPacer_Shard(t *testing.T) {
	whole := load.NewPacer(shaped)
	total := uint64(math.Round(whole.Hits(whole.Duration())))
	const n = 3
	seen := map[time.Duration]int{}
	var sent uint64
	for i := 1; i <= n; i++ {
		p := whole.Shard(i, n)
		for k := uint64(0); ; k++ {
			at, ok := p.TimeOfHit(k)
			if !ok {
				break
			}
			want, _ := whole.TimeOfHit(k*n + uint64(i-1))
			if at != want || p.StepOf(k) != whole.StepOf(k*n+uint64(i-1)) {
				t.Fatalf("shard %d hit %d at %v in step %d, want the whole schedule's hit %d", i, k, at, p.StepOf(k), k*n+uint64(i-1))
			}
			seen[at]++
			sent++
		}
		if got, want := math.Ceil(p.Hits(p.Duration())), math.Ceil((float64(total)-float64(i-1))/n); got != want {
			t.Errorf("shard %d schedules %v hits, want %v", i, got, want)
		}
	}
	if sent != total {
		t.Errorf("the shards send %d hits, the schedule has %d", sent, total)
	}
}

// A step whose hits add up to a hair above a whole number in floating
// point keeps exactly that whole number: the next hit is the next step's.
func TestPacer_StepBoundaryRounding(t *testing.T) {
	p := load.NewPacer([]load.Step{{Name: "a", Duration: 1225 * time.Millisecond, Rate: 400}, {Name: "b", Duration: time.Second, Rate: 400}})
	if got := p.StepOf(489); got != 0 {
		t.Errorf("StepOf(489) = %d, want 0", got)
	}
	if got := p.StepOf(490); got != 1 {
		t.Errorf("StepOf(490) = %d, want 1: step a has 490 hits", got)
	}
	if at, _ := p.TimeOfHit(490); at < 1225*time.Millisecond {
		t.Errorf("TimeOfHit(490) = %v, before step b starts", at)
	}
}
