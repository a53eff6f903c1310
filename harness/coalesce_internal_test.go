package harness

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

func TestCoalescingConn_Write(t *testing.T) {
	tests := []struct {
		name   string
		writes int
		size   int
	}{
		{"one small write", 1, 9},
		{"frames of many calls", 500, 23},
		{"writes past the queue's limit", 40, coalesceLimit / 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local, remote := net.Pipe()
			defer remote.Close()
			c := newCoalescingConn(local)
			var want bytes.Buffer
			for i := range tt.writes {
				want.Write(bytes.Repeat([]byte{byte(i)}, tt.size))
			}
			var got []byte
			var readErr error
			var wg sync.WaitGroup
			wg.Go(func() { got, readErr = io.ReadAll(remote) })
			b := want.Bytes()
			for len(b) > 0 {
				n, err := c.Write(b[:tt.size])
				if err != nil || n != tt.size {
					t.Fatalf("Write = %d, %v; want %d, nil", n, err, tt.size)
				}
				b = b[tt.size:]
			}
			// Once the sender is idle every byte has left; a Close
			// then ends the reader.
			waitIdle(c)
			c.Close()
			wg.Wait()
			if readErr != nil {
				t.Fatalf("read: %v", readErr)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Errorf("the peer read %d bytes, not the %d written in order", len(got), want.Len())
			}
		})
	}
}

func TestCoalescingConn_WriteAfterFailedSend(t *testing.T) {
	local, remote := net.Pipe()
	remote.Close()
	c := newCoalescingConn(local)
	defer c.Close()
	if _, err := c.Write([]byte("frame")); err != nil {
		t.Fatalf("the first Write, queued, failed: %v", err)
	}
	waitIdle(c)
	if _, err := c.Write([]byte("frame")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("a Write after a failed send = %v, want %v", err, io.ErrClosedPipe)
	}
}

// waitIdle waits until c's sender has sent its queue or failed.
func waitIdle(c *coalescingConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.sending {
		c.drained.Wait()
	}
}
