package guard

import (
	"math"
	"testing"
	"time"
)

// manualClock is a Clock the test moves by hand.
type manualClock struct{ t time.Time }

func (c *manualClock) Now() time.Time { return c.t }

func TestRetryBackoff_Bounds(t *testing.T) {
	const n = 20000
	base, maxWait := 10*time.Millisecond, 500*time.Millisecond
	tests := []struct {
		jitter string
		// lo, hi bound retry k's wait as fractions of min(max, base·2^(k-1));
		// mean is the expected mean as the same fraction.
		lo, hi, mean float64
	}{
		{JitterNone, 1, 1, 1},
		{JitterFull, 0, 1, 0.5},
		{JitterEqual, 0.5, 1, 0.75},
	}
	for _, tt := range tests {
		t.Run(tt.jitter, func(t *testing.T) {
			b := RetryBackoff{Base: base, Max: maxWait, Multiplier: 2, Jitter: tt.jitter}
			r := newRNG(42, "backoff")
			for k := 1; k <= 8; k++ {
				exp := float64(min(maxWait, base<<(k-1)))
				sum := 0.0
				for range n {
					d := float64(b.delay(k, 0, r.float64()))
					if d < tt.lo*exp-1 || d > tt.hi*exp+1 {
						t.Fatalf("retry %d: wait %v outside [%v, %v]", k, time.Duration(d), time.Duration(tt.lo*exp), time.Duration(tt.hi*exp))
					}
					sum += d
				}
				// The mean of n uniform draws is within 2% of its
				// expectation with overwhelming probability (σ/√n ≈ 0.2%).
				if mean := sum / n / exp; math.Abs(mean-tt.mean) > 0.02 {
					t.Errorf("retry %d: mean %.3f of the exponential wait, want %.3f", k, mean, tt.mean)
				}
			}
		})
	}
	t.Run(JitterDecorrelated, func(t *testing.T) {
		b := RetryBackoff{Base: base, Max: maxWait, Multiplier: 2, Jitter: JitterDecorrelated}
		r := newRNG(42, "backoff")
		for range n / 10 {
			prev := time.Duration(0)
			for k := 1; k <= 8; k++ {
				d := b.delay(k, prev, r.float64())
				hi := min(maxWait, 3*max(prev, base))
				if d < base || d > hi {
					t.Fatalf("retry %d after %v: wait %v outside [%v, %v]", k, prev, d, base, hi)
				}
				prev = d
			}
		}
	})
	t.Run("the same seed draws the same waits", func(t *testing.T) {
		b := RetryBackoff{Base: base, Max: maxWait, Multiplier: 2, Jitter: JitterFull}
		r1, r2 := newRNG(7, "x"), newRNG(7, "x")
		for k := 1; k < 100; k++ {
			if a, c := b.delay(k%8+1, 0, r1.float64()), b.delay(k%8+1, 0, r2.float64()); a != c {
				t.Fatalf("draw %d: %v != %v", k, a, c)
			}
		}
	})
}

func TestBudget_Withdraw(t *testing.T) {
	tests := []struct {
		name     string
		cfg      BudgetConfig
		requests int
		want     int // retries allowed
	}{
		{"20% of 1000 requests and no minimum", BudgetConfig{Ratio: 20, Window: 10 * time.Second}, 1000, 200},
		{"the minimum lets a quiet route retry", BudgetConfig{Ratio: 20, MinPerSecond: 1, Window: 10 * time.Second}, 0, 10},
		{"ratio and minimum add", BudgetConfig{Ratio: 10, MinPerSecond: 2, Window: 5 * time.Second}, 100, 20},
		{"100% allows one retry per request", BudgetConfig{Ratio: 100, Window: time.Second}, 50, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &manualClock{t: time.Unix(1000, 0)}
			clk := newClock(k)
			b := newBudget(tt.cfg, &clk)
			for range tt.requests {
				b.request(clk.nanos())
			}
			got := 0
			for b.withdraw() {
				got++
				if got > 10*tt.requests+1000 {
					t.Fatal("the budget never runs out")
				}
			}
			if got != tt.want {
				t.Errorf("%d retries allowed, want %d", got, tt.want)
			}
		})
	}
	t.Run("the window slides: old requests stop paying for retries", func(t *testing.T) {
		k := &manualClock{t: time.Unix(1000, 0)}
		clk := newClock(k)
		b := newBudget(BudgetConfig{Ratio: 50, Window: 2 * time.Second}, &clk)
		for range 100 {
			b.request(clk.nanos())
		}
		for range 50 {
			if !b.withdraw() {
				t.Fatal("refused within budget")
			}
		}
		if b.withdraw() {
			t.Fatal("51st retry of 100 requests allowed at 50%")
		}
		k.t = k.t.Add(3 * time.Second)
		if b.withdraw() {
			t.Fatal("retry allowed with no recent request")
		}
		for range 10 {
			b.request(clk.nanos())
		}
		for range 5 {
			if !b.withdraw() {
				t.Fatal("refused within the new window's budget")
			}
		}
		if b.withdraw() {
			t.Fatal("6th retry of 10 requests allowed at 50%")
		}
	})
	t.Run("an outage: amplification stays at 1 + ratio", func(t *testing.T) {
		// 10 000 requests over 100 s, every attempt failing, 3 attempts
		// each: without a budget 30 000 calls, with 20% about 12 000.
		k := &manualClock{t: time.Unix(1000, 0)}
		clk := newClock(k)
		b := newBudget(BudgetConfig{Ratio: 20, MinPerSecond: 1, Window: 10 * time.Second}, &clk)
		attempts := 0
		for i := range 10000 {
			if i%100 == 0 {
				k.t = k.t.Add(time.Second)
			}
			b.request(clk.nanos())
			attempts++
			for range 2 {
				if !b.withdraw() {
					break
				}
				attempts++
			}
		}
		if amp := float64(attempts) / 10000; amp > 1.2+0.011 || amp < 1.15 {
			t.Errorf("amplification %.3f, want about 1.2 (ratio) + 0.01 (minimum)", amp)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	k := &manualClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Sun, 01 Jun 2025 12:00:05 GMT": 5 * time.Second,
		"Sun, 01 Jun 2025 11:00:00 GMT": 0,
	} {
		if got := retryAfter(v, k); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestMethodSet_Has(t *testing.T) {
	s := newMethodSet([]string{"GET", "PUT", "PURGE"})
	for _, tt := range []struct {
		method string
		want   bool
	}{
		{"GET", true}, {"PUT", true}, {"PURGE", true},
		{"POST", false}, {"HEAD", false}, {"get", false}, {"PROPFIND", false}, {"", false},
	} {
		if got := s.has(tt.method); got != tt.want {
			t.Errorf("has(%q) = %v, want %v", tt.method, got, tt.want)
		}
	}
	if empty := newMethodSet(nil); empty.has("GET") || empty.has("PURGE") {
		t.Error("an empty set has a method")
	}
}
