// Package service starts and stops the processes a run depends on: the
// service under test, its dependencies, or the built-in demo target in a
// process of its own. It waits for readiness (a health URL, a TCP address or
// a line on stdout), captures stdout and stderr to files, shows their tail
// when a process dies or never becomes ready, and always stops the whole
// process group: a graceful signal, a grace period, then SIGKILL.
//
// service imports nothing of resctl's.
package service
