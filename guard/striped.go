package guard

import (
	"sync/atomic"
	"unsafe"
)

// stripedCounter is a counter whose increments are spread over cache lines
// picked by the address of the caller's stack. Goroutines run on stacks of
// their own, so parallel callers rarely write the same line, and a hot
// counter does not become the point where every core waits on every other.
//
// Each counter has 128 bytes to itself, and the array is padded from the
// fields before it: a cache line (or the pair of lines Intel's prefetcher
// fetches together) holds one counter and nothing another core reads.
type stripedCounter struct {
	_       [128]byte
	stripes [stripes]struct {
		n atomic.Uint64
		_ [120]byte
	}
}

const stripes = 16

func (c *stripedCounter) add() {
	var here byte
	// The address is only hashed, never dereferenced; stacks move, which
	// merely moves the caller to another stripe.
	a := uint64(uintptr(unsafe.Pointer(&here)))
	c.stripes[(a>>11*0x9e3779b97f4a7c15)>>60].n.Add(1)
}

func (c *stripedCounter) load() uint64 {
	var n uint64
	for i := range c.stripes {
		n += c.stripes[i].n.Load()
	}
	return n
}
