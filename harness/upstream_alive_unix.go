//go:build unix

package harness

import "syscall"

// peekFD looks at a socket without reading from it or waiting: a
// connection with nothing to read is alive; one the upstream closed reads
// as end of file, and one with bytes nobody asked for is out of step.
func (c *h1Conn) peekFD(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	c.dead = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK && err != syscall.EINTR
	return true
}
