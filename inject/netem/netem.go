package netem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resctl/resctl/quantity"
)

// ErrUnsupported is returned (wrapped, with the reason) where network
// faults cannot be made: not Linux, not root, no iproute2, no netem.
var ErrUnsupported = errors.New("network faults unsupported here")

// MaxDelay bounds a delay: packets held longer are a partition.
const MaxDelay = time.Minute

// Prefix starts the name of every namespace this package creates.
const Prefix = "resctl-"

// Faults configure the traffic leaving one side of a pair. Zero values
// are off.
type Faults struct {
	// Delay is added to every packet.
	Delay time.Duration `yaml:"delay"`
	// Jitter varies the delay by up to ± this much.
	Jitter time.Duration `yaml:"jitter"`
	// Loss, Duplicate and Corrupt are shares of packets.
	Loss quantity.Percent `yaml:"loss"`
	// Duplicate is the share of packets sent twice.
	Duplicate quantity.Percent `yaml:"duplicate"`
	// Corrupt is the share of packets with a flipped bit.
	Corrupt quantity.Percent `yaml:"corrupt"`
	// Rate limits the bytes per second leaving the side.
	Rate quantity.Bytes `yaml:"rate"`
}

// Check reports every problem, naming fields as a scenario would.
func (f Faults) Check(problem func(field, msg string)) {
	switch {
	case f.Delay < 0:
		problem("delay", "must not be negative")
	case f.Delay > 0 && f.Delay < time.Microsecond, f.Delay > MaxDelay:
		problem("delay", fmt.Sprintf("%v is outside 1µs..%v", f.Delay, MaxDelay))
	}
	if f.Jitter < 0 || (f.Jitter > 0 && f.Delay == 0) {
		problem("jitter", "must not be negative, and needs a delay")
	}
	for _, p := range []struct {
		name string
		v    quantity.Percent
	}{{"loss", f.Loss}, {"duplicate", f.Duplicate}, {"corrupt", f.Corrupt}} {
		if !(p.v >= 0 && p.v <= 100) {
			problem(p.name, fmt.Sprintf("%s is outside 0%%..100%%", p.v))
		}
	}
	if f.Rate < 0 {
		problem("rate", "must not be negative")
	}
	if f == (Faults{}) {
		problem("delay", "set at least one of delay, loss, duplicate, corrupt, rate")
	}
}

// needsNetem reports whether the faults need the netem qdisc; a rate
// alone is shaped by tbf, which kernels without netem still have.
func (f Faults) needsNetem() bool {
	return f.Delay > 0 || f.Loss > 0 || f.Duplicate > 0 || f.Corrupt > 0
}

// qdisc renders the faults as a tc qdisc and its arguments.
func (f Faults) qdisc() []string {
	rate := strconv.FormatInt(int64(f.Rate), 10) + "bps" // tc: bytes per second
	if !f.needsNetem() {
		// A burst of 10 ms of the rate (at least a full frame) keeps
		// the shaping close to a link of that speed; a second of queue
		// stands for the buffer of a slow link.
		burst := max(int64(f.Rate)/100, 1514)
		return []string{"tbf", "rate", rate, "burst", strconv.FormatInt(burst, 10), "latency", "1s"}
	}
	a := []string{"netem"}
	if f.Delay > 0 {
		a = append(a, "delay", usec(f.Delay))
		if f.Jitter > 0 {
			a = append(a, usec(f.Jitter))
		}
	}
	pct := func(name string, v quantity.Percent) {
		if v > 0 {
			a = append(a, name, strconv.FormatFloat(float64(v), 'f', -1, 64)+"%")
		}
	}
	pct("loss", f.Loss)
	pct("duplicate", f.Duplicate)
	pct("corrupt", f.Corrupt)
	if f.Rate > 0 {
		a = append(a, "rate", rate)
	}
	return a
}

func usec(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) + "us" }

// Side names one end of a pair.
type Side int

// The two ends.
const (
	A Side = 0
	B Side = 1
)

// Pair is two network namespaces joined by a veth link, A at
// 10.213.N.1 and B at 10.213.N.2: the client in one, the service in the
// other, and the faults on the link between them.
type Pair struct {
	NS   [2]string
	Addr [2]netip.Addr
	dev  [2]string

	mu sync.Mutex
	// fallback undoes what applyFallback set on a side (iptables rules,
	// a user-space delayer); nil when nothing is set. lossRule tells
	// whether a side's packets meet a stand-in loss rule.
	fallback [2]func()
	lossRule [2]bool
}

var seq atomic.Uint32

// run runs an iproute2 command and returns its error with stderr.
func run(ctx context.Context, name string, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Supported reports why network faults cannot be made here, or nil.
func Supported() error {
	if err := supported(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root", ErrUnsupported)
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found (install iproute2)", ErrUnsupported, tool)
		}
	}
	return probeNetns()
}

// NewPair creates the two namespaces and the link between them. name
// tells pairs of one process apart; Close removes them.
func NewPair(ctx context.Context, name string) (*Pair, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	n := seq.Add(1)
	// Interface names have 15 bytes: "rsv", the pid (up to 7 digits), a
	// dash, the pair's number in the process, the side.
	id := fmt.Sprintf("%d-%d", os.Getpid(), n%100)
	p := &Pair{
		NS:   [2]string{fmt.Sprintf("%s%d-%s-a", Prefix, os.Getpid(), name), fmt.Sprintf("%s%d-%s-b", Prefix, os.Getpid(), name)},
		dev:  [2]string{"rsv" + id + "a", "rsv" + id + "b"},
		Addr: [2]netip.Addr{netip.AddrFrom4([4]byte{10, 213, byte(n), 1}), netip.AddrFrom4([4]byte{10, 213, byte(n), 2})},
	}
	steps := [][]string{
		{"netns", "add", p.NS[0]},
		{"netns", "add", p.NS[1]},
		{"link", "add", p.dev[0], "type", "veth", "peer", "name", p.dev[1]},
		{"link", "set", p.dev[0], "netns", p.NS[0]},
		{"link", "set", p.dev[1], "netns", p.NS[1]},
	}
	for i := range 2 {
		steps = append(steps,
			[]string{"-n", p.NS[i], "addr", "add", p.Addr[i].String() + "/30", "dev", p.dev[i]},
			[]string{"-n", p.NS[i], "link", "set", p.dev[i], "up"},
			[]string{"-n", p.NS[i], "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, "ip", s...); err != nil {
			// A veth not yet moved into a namespace would stay behind.
			_ = run(context.Background(), "ip", "link", "del", p.dev[0])
			_ = p.Close()
			return nil, err
		}
	}
	return p, nil
}

// Apply puts faults on the traffic leaving side s (towards the other
// side), replacing any before: tc netem, or tbf for a rate alone.
func (p *Pair) Apply(ctx context.Context, s Side, f Faults) error {
	var probs []string
	f.Check(func(field, msg string) { probs = append(probs, field+": "+msg) })
	if len(probs) > 0 {
		return fmt.Errorf("netem: %s", strings.Join(probs, "; "))
	}
	if err := p.Clear(ctx, s); err != nil {
		return err
	}
	q := f.qdisc()
	args := append([]string{"-n", p.NS[s], "qdisc", "replace", "dev", p.dev[s], "root"}, q...)
	err := run(ctx, "tc", args...)
	if err != nil && strings.Contains(err.Error(), "qdisc kind is unknown") {
		if q[0] == "netem" {
			// Kernels without sch_netem: iptables and a user-space
			// delayer stand in for it.
			return p.applyFallback(ctx, s, f, err)
		}
		return fmt.Errorf("%w: the kernel has no %s qdisc (sch_%s): %v", ErrUnsupported, q[0], q[0], err)
	}
	return err
}

// Clear removes the faults of side s.
func (p *Pair) Clear(ctx context.Context, s Side) error {
	p.mu.Lock()
	undo := p.fallback[s]
	p.fallback[s] = nil
	p.mu.Unlock()
	if undo != nil {
		undo()
	}
	err := run(ctx, "tc", "-n", p.NS[s], "qdisc", "del", "dev", p.dev[s], "root")
	if err != nil && (strings.Contains(err.Error(), "No such file") || strings.Contains(err.Error(), "Cannot delete qdisc with handle of zero")) {
		return nil // nothing to clear
	}
	return err
}

// deadMAC is the hardware address a partitioned side sends its packets
// to: no interface has it, so the other end discards every frame.
const deadMAC = "02:00:5e:00:de:ad"

// Partition makes the packets leaving the given sides vanish silently:
// the link stays up and sending succeeds, but the other end discards
// every frame, as behind a real partition — new connections wait for an
// answer to their SYN, open ones stall and retransmit. Without sides it
// cuts both directions.
func (p *Pair) Partition(ctx context.Context, sides ...Side) error {
	if len(sides) == 0 {
		sides = []Side{A, B}
	}
	var errs []error
	for _, s := range sides {
		errs = append(errs, run(ctx, "ip", "-n", p.NS[s], "neigh", "replace", p.Addr[1-s].String(),
			"lladdr", deadMAC, "nud", "permanent", "dev", p.dev[s]))
	}
	return errors.Join(errs...)
}

// Heal ends a partition of either side: each side learns the other's
// address anew, and stalled connections go on at their next retransmit.
func (p *Pair) Heal(ctx context.Context) error {
	var errs []error
	for s := range 2 {
		err := run(ctx, "ip", "-n", p.NS[s], "neigh", "del", p.Addr[1-s].String(), "dev", p.dev[s])
		if err != nil && !strings.Contains(err.Error(), "No such file") && !strings.Contains(err.Error(), "Cannot assign requested address") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats count the packets leaving one side of a pair.
type Stats struct {
	// Packets is every packet that left the side, or was dropped on its
	// way out or in by a fault.
	Packets uint64
	// Dropped counts the packets a fault dropped: netem's or tbf's
	// drops, or the stand-in's loss rule.
	Dropped uint64
}

// Stats returns the counts of side s so far: the packets since the pair
// was made, the drops of the faults on it now (each Apply starts them
// afresh).
func (p *Pair) Stats(ctx context.Context, s Side) (Stats, error) {
	tx, err := p.TxPackets(ctx, s)
	if err != nil {
		return Stats{}, err
	}
	out, err := exec.CommandContext(ctx, "tc", "-n", p.NS[s], "-s", "-j", "qdisc", "show", "dev", p.dev[s]).Output()
	if err != nil {
		return Stats{}, fmt.Errorf("tc -s qdisc show %s: %w", p.dev[s], err)
	}
	var qdiscs []struct {
		Root  bool   `json:"root"`
		Drops uint64 `json:"drops"`
	}
	if err := json.Unmarshal(out, &qdiscs); err != nil {
		return Stats{}, fmt.Errorf("tc -s qdisc show %s: unexpected output %q", p.dev[s], out)
	}
	var st Stats
	for _, q := range qdiscs {
		if q.Root {
			st.Dropped += q.Drops
		}
	}
	lost, err := p.standInDrops(ctx, s)
	if err != nil {
		return Stats{}, err
	}
	// Packets the qdisc dropped never reached the device's count; those
	// the stand-in drops did, on their way to the other side.
	st.Packets = tx + st.Dropped
	st.Dropped += lost
	return st, nil
}

// TxPackets counts the packets side s has sent on the link.
func (p *Pair) TxPackets(ctx context.Context, s Side) (uint64, error) {
	out, err := exec.CommandContext(ctx, "ip", "-n", p.NS[s], "-s", "-j", "link", "show", "dev", p.dev[s]).Output()
	if err != nil {
		return 0, fmt.Errorf("ip -s link show %s: %w", p.dev[s], err)
	}
	var links []struct {
		Stats struct {
			TX struct {
				Packets uint64 `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("ip -s link show %s: unexpected output %q", p.dev[s], out)
	}
	return links[0].Stats.TX.Packets, nil
}

// Close removes both namespaces; the link and its faults go with them,
// and the stand-in's delayers stop.
func (p *Pair) Close() error {
	p.mu.Lock()
	undo := p.fallback
	p.fallback = [2]func(){}
	p.mu.Unlock()
	for _, u := range undo {
		if u != nil {
			u()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, ns := range p.NS {
		if err := run(ctx, "ip", "netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CleanupStale removes the namespaces left by resctl processes that no
// longer run, and returns their names. Namespaces of live processes are
// left alone.
func CleanupStale(ctx context.Context) ([]string, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var removed []string
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		pid, ok := ownerPID(name)
		if !ok || alive(pid) {
			continue
		}
		if err := run(ctx, "ip", "netns", "del", name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// ownerPID reads the pid out of a namespace name resctl-PID-….
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(num)
	return pid, ok && err == nil && pid > 0
}
