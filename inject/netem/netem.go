package netem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ErrUnsupported is returned (wrapped, with the reason) where network
// faults cannot be made: not Linux, not root, no iproute2, no netem.
var ErrUnsupported = errors.New("network faults unsupported here")

// Prefix starts the name of every namespace this package creates.
const Prefix = "resctl-"

// Faults configure netem on one side of a pair. Zero values are off.
type Faults struct {
	Delay  time.Duration
	Jitter time.Duration
	// Loss, Duplicate and Corrupt are percentages of packets, 0-100.
	Loss      float64
	Duplicate float64
	Corrupt   float64
}

// Check reports every problem, naming fields as a scenario would.
func (f Faults) Check(problem func(field, msg string)) {
	if f.Delay < 0 {
		problem("delay", "must not be negative")
	}
	if f.Jitter < 0 || (f.Jitter > 0 && f.Delay == 0) {
		problem("jitter", "must not be negative, and needs a delay")
	}
	for name, p := range map[string]float64{"loss": f.Loss, "duplicate": f.Duplicate, "corrupt": f.Corrupt} {
		if !(p >= 0 && p <= 100) {
			problem(name, fmt.Sprintf("%v is outside 0%%..100%%", p))
		}
	}
	if f == (Faults{}) {
		problem("delay", "set at least one of delay, loss, duplicate, corrupt")
	}
}

// args renders the faults as tc netem arguments.
func (f Faults) args() []string {
	var a []string
	if f.Delay > 0 {
		a = append(a, "delay", usec(f.Delay))
		if f.Jitter > 0 {
			a = append(a, usec(f.Jitter))
		}
	}
	pct := func(name string, v float64) {
		if v > 0 {
			a = append(a, name, strconv.FormatFloat(v, 'f', -1, 64)+"%")
		}
	}
	pct("loss", f.Loss)
	pct("duplicate", f.Duplicate)
	pct("corrupt", f.Corrupt)
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
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, n%100)
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
			_ = p.Close()
			return nil, err
		}
	}
	return p, nil
}

// Apply puts netem faults on the traffic leaving side s (towards the other
// side), replacing any before.
func (p *Pair) Apply(ctx context.Context, s Side, f Faults) error {
	var probs []string
	f.Check(func(field, msg string) { probs = append(probs, field+": "+msg) })
	if len(probs) > 0 {
		return fmt.Errorf("netem: %s", strings.Join(probs, "; "))
	}
	args := append([]string{"-n", p.NS[s], "qdisc", "replace", "dev", p.dev[s], "root", "netem"}, f.args()...)
	err := run(ctx, "tc", args...)
	if err != nil && strings.Contains(err.Error(), "qdisc kind is unknown") {
		return fmt.Errorf("%w: the kernel has no netem qdisc (sch_netem): %v", ErrUnsupported, err)
	}
	return err
}

// Clear removes the netem faults of side s.
func (p *Pair) Clear(ctx context.Context, s Side) error {
	err := run(ctx, "tc", "-n", p.NS[s], "qdisc", "del", "dev", p.dev[s], "root")
	if err != nil && (strings.Contains(err.Error(), "No such file") || strings.Contains(err.Error(), "Cannot delete qdisc with handle of zero")) {
		return nil // nothing to clear
	}
	return err
}

// Partition cuts the link: packets between the sides go nowhere, and
// connections across it stall, as in a real partition.
func (p *Pair) Partition(ctx context.Context) error {
	return errors.Join(
		run(ctx, "ip", "-n", p.NS[0], "link", "set", p.dev[0], "down"),
		run(ctx, "ip", "-n", p.NS[1], "link", "set", p.dev[1], "down"),
	)
}

// Heal restores the link after Partition.
func (p *Pair) Heal(ctx context.Context) error {
	return errors.Join(
		run(ctx, "ip", "-n", p.NS[0], "link", "set", p.dev[0], "up"),
		run(ctx, "ip", "-n", p.NS[1], "link", "set", p.dev[1], "up"),
	)
}

// Close removes both namespaces; the link and its faults go with them.
func (p *Pair) Close() error {
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
