package guard

import (
	"fmt"
	"math"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/quantity"
)

// BudgetConfig bounds the extra calls retries and hedges make: over the
// last Window, they may be at most Ratio of the requests, plus MinPerSecond
// per second of the window so that a quiet route can still retry. During
// an outage every request fails, and without a budget each would be sent
// Attempts times: the budget keeps the amplification at 1 + Ratio.
// A scenario may write it as a bare ratio, `budget: 20%`.
type BudgetConfig struct {
	// Ratio is the most extra calls, as a share of the requests of the
	// window.
	Ratio quantity.Percent `yaml:"ratio"`
	// MinPerSecond is extra calls allowed per second of the window whatever
	// the ratio, so a quiet route can still retry.
	MinPerSecond float64 `yaml:"min_per_second"`
	// Window is the span the budget counts requests and extra calls over.
	Window time.Duration `yaml:"window"`
}

// DefaultBudgetConfig is Finagle's: 20% of requests, at least 10 a
// second, over ten seconds.
func DefaultBudgetConfig() BudgetConfig {
	return BudgetConfig{Ratio: 20, MinPerSecond: 10, Window: 10 * time.Second}
}

// DecodeNode implements strictyaml.NodeDecoder: a scalar is the ratio.
func (b *BudgetConfig) DecodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!null" {
			return
		}
		if err := b.Ratio.UnmarshalText([]byte(n.Value)); err != nil {
			d.Add(strictyaml.NodePos(n), path, "%v", err)
		}
		return
	}
	d.DecodeStruct(n, reflect.ValueOf(b).Elem(), path)
}

// Check reports a ratio outside 0..100%, a negative minimum and a window
// that is not whole seconds.
func (b *BudgetConfig) Check(problem func(field, msg string)) {
	r := float64(b.Ratio)
	switch {
	case math.IsNaN(r) || r < 0:
		problem("ratio", fmt.Sprintf("%v is not a share of requests (0%%..100%%)", b.Ratio))
	case r > 100:
		problem("ratio", fmt.Sprintf("%v is above 100%%: retries could outnumber the requests they retry", b.Ratio))
	}
	if math.IsNaN(b.MinPerSecond) || b.MinPerSecond < 0 {
		problem("min_per_second", "must be at least 0")
	}
	if r == 0 && b.MinPerSecond == 0 {
		problem("ratio", "with min_per_second 0 the budget allows no retry at all; give a ratio, e.g. 20%")
	}
	checkSeconds("window", b.Window, problem)
}

// budget counts requests and the retries and hedges made for them over a
// sliding window of one-second buckets.
type budget struct {
	cfg BudgetConfig
	clk *clock
	win *timeWindow // calls: requests; bad: extra attempts
	// reserve is the minimum's share of the window, in attempts.
	reserve float64
}

func newBudget(c BudgetConfig, k *clock) *budget {
	n := int(c.Window / time.Second)
	return &budget{cfg: c, clk: k, win: newTimeWindow(time.Second, n, k.nanos()),
		reserve: c.MinPerSecond * float64(n)}
}

// request counts a request the budget's retries are a share of, at now
// on the budget's clock.
func (b *budget) request(now int64) { b.win.add(now, 1, 0) }

// withdraw takes one retry or hedge from the budget, and reports false
// when the budget is spent. Concurrent withdrawals may overshoot by the
// number of callers racing, never more.
func (b *budget) withdraw() bool {
	now := b.clk.nanos()
	req, extra := b.win.totals(now)
	if float64(extra+1) > b.cfg.Ratio.Fraction()*float64(req)+b.reserve {
		return false
	}
	b.win.add(now, 0, 1)
	return true
}
