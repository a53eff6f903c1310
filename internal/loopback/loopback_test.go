package loopback

import (
	"net"
	"testing"
)

// A quiet port is below the ephemeral ranges, and free: it can be bound.
func TestQuietAddr(t *testing.T) {
	for range 20 {
		addr, err := QuietAddr()
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("QuietAddr gave %s, which cannot be bound: %v", addr, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port < quietLow || port >= quietHigh {
			t.Errorf("port %d outside %d–%d", port, quietLow, quietHigh)
		}
	}
}
