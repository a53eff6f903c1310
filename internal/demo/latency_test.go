package demo

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"
)

func TestProfileAtIsLogNormalQuantile(t *testing.T) {
	for _, p := range allProfiles() {
		if got := p.at(0); got != p.median {
			t.Errorf("%v: at(0) = %v, want median %v", p, got, p.median)
		}
		got := p.at(z99)
		if rel := math.Abs(float64(got-p.p99)) / float64(p.p99); rel > 1e-6 {
			t.Errorf("%v: at(z99) = %v, want p99 %v", p, got, p.p99)
		}
		if got := p.at(-50); got != minDelay {
			t.Errorf("%v: at(-50) = %v, want floor %v", p, got, minDelay)
		}
		if got := p.at(50); got != p.max() {
			t.Errorf("%v: at(50) = %v, want cap %v", p, got, p.max())
		}
	}
}

func TestSamplerDistribution(t *testing.T) {
	const n = 10000
	for _, p := range allProfiles() {
		s := newSampler(42)
		draws := make([]time.Duration, n)
		for i := range draws {
			draws[i] = s.sample(p)
		}
		slices.Sort(draws)
		median := draws[n/2]
		p99 := draws[n*99/100]
		if rel := relErr(median, p.median); rel > 0.05 {
			t.Errorf("profile %v: sampled median %v, want %v ±5%% (off by %.1f%%)", p, median, p.median, rel*100)
		}
		if rel := relErr(p99, p.p99); rel > 0.12 {
			t.Errorf("profile %v: sampled p99 %v, want %v ±12%% (off by %.1f%%)", p, p99, p.p99, rel*100)
		}
		if draws[0] < minDelay || draws[n-1] > p.max() {
			t.Errorf("profile %v: samples outside [%v, %v]: min %v max %v", p, minDelay, p.max(), draws[0], draws[n-1])
		}
	}
}

func TestSamplerDeterministic(t *testing.T) {
	a, b, c := newSampler(7), newSampler(7), newSampler(8)
	same, differ := true, false
	for range 100 {
		x, y, z := a.sample(latSlow), b.sample(latSlow), c.sample(latSlow)
		same = same && x == y
		differ = differ || x != z
	}
	if !same {
		t.Error("same seed produced different sequences")
	}
	if !differ {
		t.Error("different seeds produced identical sequences")
	}
	// Seed 0 is the fixed default, not time-based.
	if newSampler(0).sample(latSlow) != newSampler(defaultSeed).sample(latSlow) {
		t.Error("seed 0 does not map to the fixed default seed")
	}
}

func TestWaitHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if wait(ctx, time.Hour) {
		t.Fatal("wait on a cancelled context reported completion")
	}
	if !wait(context.Background(), time.Microsecond) {
		t.Fatal("short wait did not complete")
	}
}

func allProfiles() []latencyProfile {
	return []latencyProfile{latOrdersList, latOrderGet, latOrderCreate, latUserGet, latSlow}
}

func relErr(got, want time.Duration) float64 {
	return math.Abs(float64(got-want)) / float64(want)
}
