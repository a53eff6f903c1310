package netem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

func supported() error { return nil }

// probeNetns checks that namespaces can be made, by making one.
func probeNetns() error {
	probe := fmt.Sprintf("%sprobe-%d", Prefix, os.Getpid())
	ctx := context.Background()
	if err := run(ctx, "ip", "netns", "add", probe); err != nil {
		return fmt.Errorf("%w: cannot create network namespaces: %v", ErrUnsupported, err)
	}
	_ = run(ctx, "ip", "netns", "del", probe)
	return nil
}

// in runs f with the calling goroutine's thread inside side s's namespace.
// Sockets made by f stay in that namespace after it returns.
func (p *Pair) in(s Side, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer self.Close()
	target, err := os.Open("/var/run/netns/" + p.NS[s])
	if err != nil {
		return err
	}
	defer target.Close()
	if err := setns(target.Fd()); err != nil {
		return fmt.Errorf("enter namespace %s: %w", p.NS[s], err)
	}
	ferr := f()
	if err := setns(self.Fd()); err != nil {
		// The thread is in the wrong namespace: never hand it back to
		// the scheduler for other goroutines.
		runtime.Goexit()
	}
	return ferr
}

// Listen opens a TCP listener on side s at its address and port.
func (p *Pair) Listen(s Side, port int) (net.Listener, error) {
	var ln net.Listener
	err := p.in(s, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(p.Addr[s].String(), fmt.Sprint(port)))
		return err
	})
	return ln, err
}

// DialContext connects from side s to addr.
func (p *Pair) DialContext(ctx context.Context, s Side, addr string) (net.Conn, error) {
	var c net.Conn
	err := p.in(s, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
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
