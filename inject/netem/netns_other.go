//go:build !linux

package netem

import (
	"context"
	"fmt"
	"net"
	"runtime"
)

func supported() error { return fmt.Errorf("%w: needs Linux, not %s", ErrUnsupported, runtime.GOOS) }

// Listen is not supported off Linux.
func (p *Pair) Listen(Side, int) (net.Listener, error) { return nil, supported() }

// DialContext is not supported off Linux.
func (p *Pair) DialContext(context.Context, Side, string) (net.Conn, error) { return nil, supported() }

func probeNetns() error { return supported() }

func alive(int) bool { return true }

func (p *Pair) applyFallback(context.Context, Side, Faults, error) error { return supported() }

func (p *Pair) standInDrops(context.Context, Side) (uint64, error) { return 0, supported() }
