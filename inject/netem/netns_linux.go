package netem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func supported() error { return nil }

// probeNetns checks that namespaces can be made, by making one, once per
// process: every pair a run makes asks.
var probeNetns = sync.OnceValue(func() error {
	probe := fmt.Sprintf("%sprobe-%d", Prefix, os.Getpid())
	ctx := context.Background()
	if err := run(ctx, "ip", "netns", "add", probe); err != nil {
		return fmt.Errorf("%w: cannot create network namespaces: %v", ErrUnsupported, err)
	}
	_ = run(ctx, "ip", "netns", "del", probe)
	return nil
})

// nsThreads bounds the threads inside a namespace at once; a socket takes
// microseconds to make, so a few serve any dial rate.
const nsThreads = 4

var nsSlots = make(chan struct{}, nsThreads)

// in runs f on a thread of its own inside side s's namespace: sockets f
// makes stay in that namespace. f may call leave to take the thread back
// to the process's namespace early — once its socket exists, before it
// waits on the network — so that a slow connect holds no thread. A
// thread that cannot get back is never reused: its goroutine ends locked
// to it, and the runtime ends the thread.
//
// At most nsThreads goroutines are in a namespace at once. A locked
// goroutine that blocks (opening the namespace, a preemption) keeps its
// thread, so without the bound a burst of dials — every new upstream
// connection during a partition — would take a thread each.
func (p *Pair) in(s Side, f func(leave func() error) error) error {
	nsSlots <- struct{}{}
	done := make(chan error, 1)
	go func() {
		released := false
		release := func() {
			if !released {
				released = true
				<-nsSlots
			}
		}
		defer release()
		runtime.LockOSThread()
		fail := func(err error) {
			runtime.UnlockOSThread() // still in its own namespace
			release()
			done <- err
		}
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			fail(err)
			return
		}
		defer self.Close()
		target, err := os.Open("/var/run/netns/" + p.NS[s])
		if err != nil {
			fail(err)
			return
		}
		defer target.Close()
		if err := setns(target.Fd()); err != nil {
			fail(fmt.Errorf("enter namespace %s: %w", p.NS[s], err))
			return
		}
		left := false
		leave := func() error {
			if left {
				return nil
			}
			if err := setns(self.Fd()); err != nil {
				return fmt.Errorf("leave namespace %s: %w", p.NS[s], err)
			}
			left = true
			runtime.UnlockOSThread()
			release()
			return nil
		}
		ferr := f(leave)
		if err := leave(); err != nil && ferr == nil {
			ferr = err
		}
		done <- ferr
	}()
	return <-done
}

// Listen opens a TCP listener on side s at its address and port.
func (p *Pair) Listen(s Side, port int) (net.Listener, error) {
	var ln net.Listener
	err := p.in(s, func(func() error) (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(p.Addr[s].String(), fmt.Sprint(port)))
		return err
	})
	if err != nil && ln != nil {
		ln.Close()
		ln = nil
	}
	return ln, err
}

// DialContext connects from side s to addr, an IP address and port. The
// socket is made in the namespace; the connect waits outside it.
func (p *Pair) DialContext(ctx context.Context, s Side, addr string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(addr); err != nil {
		return nil, fmt.Errorf("dial across the link: %q is not an IP address and port", addr)
	}
	var c net.Conn
	err := p.in(s, func(leave func() error) (err error) {
		sockets := 0
		d := net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error {
			// The net package may make a second socket for one dial
			// (a retry); it would be made outside the namespace.
			if sockets++; sockets > 1 {
				return errors.New("a second socket for one dial, outside the namespace")
			}
			return leave()
		}}
		d.SetMultipathTCP(false)
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	if err != nil && c != nil {
		c.Close()
		c = nil
	}
	return c, err
}

// setns moves the calling thread into the network namespace of fd.
func setns(fd uintptr) error {
	return unix.Setns(int(fd), unix.CLONE_NEWNET)
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// applyFallback makes the faults of a netem qdisc, for a kernel without
// one, from what it has: a tbf qdisc for the rate, iptables rules for loss
// (statistic, DROP as the packets arrive on the other side) and
// duplication (statistic, TEE to the other side), and an NFQUEUE on the
// other side whose packets a user-space delayer holds for the delay.
// Corruption has no stand-in. netemErr is why tc netem failed.
func (p *Pair) applyFallback(ctx context.Context, s Side, f Faults, netemErr error) error {
	if f.Corrupt > 0 {
		return fmt.Errorf("%w: corrupt needs the kernel's netem qdisc (sch_netem): %v", ErrUnsupported, netemErr)
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("%w: the kernel has no netem qdisc (sch_netem) and iptables, which stands in for it, is not installed: %v", ErrUnsupported, netemErr)
	}
	var undo []func()
	undoAll := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	ipt := func(in Side, args ...string) error {
		return run(ctx, "ip", append([]string{"netns", "exec", p.NS[in], "iptables", "-w"}, args...)...)
	}
	flush := func(in Side, table, chain string) func() {
		return func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = run(cctx, "ip", "netns", "exec", p.NS[in], "iptables", "-w", "-t", table, "-F", chain)
		}
	}
	prob := func(v float64) string { return strconv.FormatFloat(v/100, 'f', -1, 64) }
	steps := []struct {
		on   bool
		do   func() error
		undo func()
	}{
		{f.Rate > 0, func() error {
			args := append([]string{"-n", p.NS[s], "qdisc", "replace", "dev", p.dev[s], "root"}, Faults{Rate: f.Rate}.qdisc()...)
			return run(ctx, "tc", args...)
		}, func() {}},
		// Lost packets are dropped as they arrive on the other side: a
		// drop on the way out would tell the sender (EPERM), and a lost
		// packet tells nobody.
		{f.Loss > 0, func() error {
			p.mu.Lock()
			p.lossRule[s] = true
			p.mu.Unlock()
			return ipt(1-s, "-t", "filter", "-A", "INPUT", "-i", p.dev[1-s], "-m", "statistic", "--mode", "random", "--probability", prob(float64(f.Loss)), "-j", "DROP")
		}, func() {
			flush(1-s, "filter", "INPUT")()
			p.mu.Lock()
			p.lossRule[s] = false
			p.mu.Unlock()
		}},
		// Delayed packets are held as they arrive on the other side: held
		// on the way out they would still count against the sending
		// socket, and TCP would slow to a couple of packets per delay.
		{f.Delay > 0, func() error {
			var d *delayer
			err := p.in(1-s, func(func() error) (err error) {
				d, err = startDelayer(0, f.Delay, f.Jitter, uint64(s))
				return err
			})
			if d != nil {
				undo = append(undo, d.close)
			}
			if err != nil {
				return err
			}
			return ipt(1-s, "-t", "mangle", "-A", "PREROUTING", "-i", p.dev[1-s], "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass")
		}, flush(1-s, "mangle", "PREROUTING")},
		{f.Duplicate > 0, func() error {
			return ipt(s, "-t", "mangle", "-A", "POSTROUTING", "-o", p.dev[s], "-m", "statistic", "--mode", "random", "--probability", prob(float64(f.Duplicate)),
				"-j", "TEE", "--gateway", p.Addr[1-s].String())
		}, flush(s, "mangle", "POSTROUTING")},
	}
	for _, st := range steps {
		if !st.on {
			continue
		}
		err := st.do()
		undo = append(undo, st.undo)
		if err != nil {
			undoAll()
			return fmt.Errorf("netem stand-in (the kernel has no sch_netem): %w", err)
		}
	}
	p.mu.Lock()
	p.fallback[s] = undoAll
	p.mu.Unlock()
	return nil
}

// standInDrops counts the packets from side s that the stand-in's loss
// rule dropped as they arrived on the other side; 0 without one.
func (p *Pair) standInDrops(ctx context.Context, s Side) (uint64, error) {
	p.mu.Lock()
	on := p.lossRule[s]
	p.mu.Unlock()
	if !on {
		return 0, nil
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", p.NS[1-s], "iptables", "-w", "-t", "filter", "-L", "INPUT", "-v", "-x", "-n").Output()
	if err != nil {
		return 0, fmt.Errorf("iptables -L INPUT in %s: %w", p.NS[1-s], err)
	}
	var n uint64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "DROP" && strings.Contains(line, p.dev[1-s]) {
			v, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("iptables -L INPUT in %s: %q", p.NS[1-s], line)
			}
			n += v
		}
	}
	return n, nil
}
