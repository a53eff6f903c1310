//go:build !unix

package harness

// peekFD cannot look at a socket here: every idle connection is taken
// for alive, and a request that finds it closed is tried again where
// that is safe.
func (c *h1Conn) peekFD(uintptr) bool { return true }
