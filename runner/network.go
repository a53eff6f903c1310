package runner

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"github.com/resctl/resctl/inject/netem"
	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
)

// networkFault is a network fault the clock switched, for the report.
type networkFault struct {
	proxy  string
	phase  string
	params map[string]any
	// started tells that the fault reached its link at least once; applied
	// that it is on it now (a flapping fault comes and goes).
	started, applied bool
	// before is the link's count as the fault came on; stats, once it
	// went off, what met the fault while it was on.
	before, stats netem.Stats
	err           string
	// from and to bound the fault's time on the link; onFor sums its
	// on-windows, the last of which began at resumed.
	from, to, onFor, resumed time.Duration
}

// openLinks lays a network link (netem.Link) between each proxy that has
// network faults and its upstream, so they act on real packets. Where
// that cannot be done (not Linux, not root, no namespaces) the proxy dials
// directly, resctl says why, and its network faults (optional ones: the
// run refused the others) are reported as not started. supported says
// whether it can be done. Namespaces left by killed runs are removed first.
func (ps *proxySet) openLinks(ctx context.Context, s *scenario.Scenario, supported func() error, progress io.Writer) {
	want := map[string]bool{}
	for _, ph := range s.Phases {
		for _, f := range ph.Faults {
			if f.Network != nil {
				want[f.Proxy] = true
			}
		}
	}
	if len(want) == 0 {
		return
	}
	if err := supported(); err != nil {
		for _, pr := range ps.list {
			if want[pr.Name] {
				pr.linkErr = err
			}
		}
		fmt.Fprintf(progress, "resctl: warning: network faults will not run: %v\n", err)
		return
	}
	if stale, err := netem.CleanupStale(ctx); len(stale) > 0 || err != nil {
		fmt.Fprintf(progress, "resctl: removed %d network namespaces left by earlier runs (%v)\n", len(stale), err)
	}
	for _, pr := range ps.list {
		if !want[pr.Name] {
			continue
		}
		l, err := netem.NewLink(ctx, pr.Name)
		if err != nil {
			pr.linkErr = err
			fmt.Fprintf(progress, "resctl: warning: network faults of proxy %s will not run: %v\n", pr.Name, err)
			continue
		}
		pr.link = l
	}
}

// startNetwork puts a phase's network fault on its proxy's link.
func (c *phaseClock) startNetwork(f plannedFault, span record.PhaseSpan) bool {
	nf := networkFault{proxy: f.proxy, phase: span.Name, params: f.params}
	pr := c.proxies.byName(f.proxy)
	switch {
	case pr == nil:
		nf.err = fmt.Sprintf("no proxy named %q", f.proxy)
	case pr.link == nil:
		nf.err = fmt.Sprint(pr.linkErr)
	}
	c.mu.Lock()
	c.network[f.id] = nf
	c.mu.Unlock()
	if nf.err != "" {
		return false
	}
	return c.resumeNetwork(f)
}

// resumeNetwork applies a started fault to its link: at its phase's start,
// and again at each of its on-windows.
func (c *phaseClock) resumeNetwork(f plannedFault) bool {
	c.mu.Lock()
	nf, ok := c.network[f.id]
	c.mu.Unlock()
	if !ok || nf.err != "" || nf.applied {
		return false
	}
	l := c.proxies.byName(f.proxy).link
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	before, err := l.Stats(ctx, f.network)
	if err == nil {
		err = l.Apply(ctx, f.network)
	}
	now := time.Since(c.start) // on from when the link has it: ip and tc take tens of milliseconds
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		nf.err = err.Error()
		c.network[f.id] = nf
		c.evs = append(c.evs, record.Event{At: now, Source: "fault", Kind: "error", Detail: fmt.Sprintf("%s: %v", f.id, err)})
		fmt.Fprintf(c.progress, "resctl: warning: network fault %s did not start: %v\n", f.id, err)
		return false
	}
	if !nf.started {
		nf.started, nf.from = true, now
	}
	nf.applied, nf.before, nf.resumed = true, before, now
	c.network[f.id] = nf
	return true
}

// stopNetwork clears the link of a fault's proxy and adds the packets
// that met the fault since it was applied: at its phase's end, and at the
// end of each of its on-windows. It reports whether the fault was on.
func (c *phaseClock) stopNetwork(f plannedFault) bool {
	c.mu.Lock()
	nf, ok := c.network[f.id]
	c.mu.Unlock()
	if !ok || !nf.applied {
		return false
	}
	l := c.proxies.byName(f.proxy).link
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Counted before the clear: the drops go with the fault's qdisc and
	// rules.
	after, err := l.Stats(ctx, f.network)
	if cerr := l.Clear(ctx); cerr != nil {
		c.event("fault", "error", fmt.Sprintf("%s: clear: %v", f.id, cerr))
	}
	to := time.Since(c.start) // off once the link is clear
	c.mu.Lock()
	defer c.mu.Unlock()
	nf.applied = false
	nf.to = to
	nf.onFor += to - nf.resumed
	switch {
	case err != nil:
		nf.err = "counting its packets: " + err.Error()
	case after.Packets >= nf.before.Packets && after.Dropped >= nf.before.Dropped:
		nf.stats.Packets += after.Packets - nf.before.Packets
		nf.stats.Dropped += after.Dropped - nf.before.Dropped
	}
	c.network[f.id] = nf
	return true
}

// networkWindows are the actions that make a flapping network fault go
// off and on again inside its phase; the phase's start and end switch it
// on and off for good.
func (c *phaseClock) networkWindows(f plannedFault, span record.PhaseSpan) []action {
	on, off := f.network.Schedule.On, f.network.Schedule.Off
	if on <= 0 || off <= 0 {
		return nil
	}
	var acts []action
	for t := span.Start + on; t < span.End; t += on + off {
		acts = append(acts, action{t, func() {
			if c.stopNetwork(f) {
				c.event("fault", "off", f.id)
			}
		}})
		// A window too short to matter before the phase ends is left
		// out: switching takes tens of milliseconds.
		if next := t + off; next < span.End-netem.MinWindow {
			acts = append(acts, action{next, func() {
				if c.resumeNetwork(f) {
					c.event("fault", "on", f.id)
				}
			}})
		}
	}
	return acts
}

// networkFaults returns the network faults switched so far, by id.
func (c *phaseClock) networkFaults() map[string]networkFault {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.network)
}

// checkFaults refuses a scenario whose network faults this machine cannot
// inject, unless each is optional.
func checkFaults(s *scenario.Scenario, supported func() error) error {
	var ids []string
	for _, ph := range s.Phases {
		for _, f := range ph.Faults {
			if f.Network != nil && !f.Optional {
				ids = append(ids, f.ID)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if err := supported(); err != nil {
		return fmt.Errorf("%w: network fault %s: %v", ErrCannotInject, strings.Join(ids, ", "), err)
	}
	return nil
}

// addNetworkFaults puts the network faults in the report. Matched counts
// the packets that left the faulted ends of the link while each was on
// (dropped ones included). A fault that acts on every such packet (a
// delay, a rate, a partition) injected all of them; one that only loses
// a share of them injected the packets it dropped, and its configured
// rate is that share.
func addNetworkFaults(r *report.Report, s *scenario.Scenario, nfs map[string]networkFault) {
	for _, ph := range s.Phases {
		for _, f := range ph.Faults {
			if f.Network == nil {
				continue
			}
			nf, ok := nfs[f.ID]
			if !ok {
				continue // its phase was never reached
			}
			out := report.Fault{ID: f.ID, Kind: f.Kind(), Proxy: nf.proxy, Phase: nf.phase, Layer: "network", Config: nf.params,
				Matched: nf.stats.Packets, Injected: nf.stats.Packets, ConfiguredRate: 1,
				StartS: report.Secs(nf.from), EndS: report.Secs(nf.to), Error: nf.err}
			if f.Network.Schedule.On > 0 {
				out.OnS = nf.onFor.Seconds()
			}
			if n := f.Network; n.Loss > 0 && n.Faults == (netem.Faults{Loss: n.Loss}) {
				out.Injected, out.ConfiguredRate = nf.stats.Dropped, n.Loss.Fraction()
			}
			// An error after the fault was on (counting, a later window)
			// is reported beside what it did.
			out.Fired = nf.started && out.Injected > 0
			if out.Matched > 0 {
				out.EffectiveRate = float64(out.Injected) / float64(out.Matched)
			}
			r.Faults = append(r.Faults, out)
			if s.RequireFaultsFired && !out.Fired && !(f.Optional && !nf.started) {
				observed := fmt.Sprintf("%d packets, %d dropped", nf.stats.Packets, nf.stats.Dropped)
				if !nf.started {
					observed = "did not start"
				}
				failNotFired(r, f.ID, observed, nf.err)
			}
		}
	}
}
