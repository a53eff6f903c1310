package harness

import (
	"context"
	"net"
	"sync"
)

// coalesceLimit is how much a coalescingConn queues before its writers
// wait for the connection: backpressure as a plain connection's full
// socket buffer gives it.
const coalesceLimit = 256 << 10

// coalescingConn sends what its callers write in batches: a Write is
// copied into a queue and returns, and one goroutine at a time sends
// everything queued since its last send in one system call: the h2c and
// grpc proxies' connections upstream. The HTTP/2 transport flushes every
// frame of a request on its own — headers, data, the end of the stream:
// three sends a unary gRPC call — and under load many calls' frames then
// leave in one. Bytes leave in the order they
// were written. A failed send fails every later Write; a Close drops
// what is still queued.
type coalescingConn struct {
	net.Conn
	mu      sync.Mutex
	drained sync.Cond // the queue shrank, or a send failed
	queued  []byte
	spare   []byte // the buffer of the batch last sent, for the next queue
	sending bool   // a goroutine is sending the queue
	err     error
}

// coalescingDials makes dial's connections coalescingConns.
func coalescingDials(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newCoalescingConn(c), nil
	}
}

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c}
	cc.drained.L = &cc.mu
	return cc
}

func (c *coalescingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	for len(c.queued) >= coalesceLimit && c.err == nil {
		c.drained.Wait()
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	c.queued = append(c.queued, b...)
	start := !c.sending
	c.sending = true
	c.mu.Unlock()
	if start {
		go c.send()
	}
	return len(b), nil
}

// send sends the queue until it is empty.
func (c *coalescingConn) send() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.queued) > 0 && c.err == nil {
		batch := c.queued
		c.queued, c.spare = c.spare[:0], nil
		c.mu.Unlock()
		_, err := c.Conn.Write(batch)
		c.mu.Lock()
		c.spare = batch[:0]
		c.err = err
		c.drained.Broadcast()
	}
	c.sending = false
}
