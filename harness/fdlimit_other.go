//go:build !unix

package harness

// fileLimit stands in for RLIMIT_NOFILE where there is none (Windows,
// whose sockets are handles without such a limit): a figure that keeps
// the default caps generous and finite.
func fileLimit() uint64 { return 16384 }
