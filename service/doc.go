// Package service starts and stops the processes a run depends on: the
// service under test, its dependencies, or the built-in demo target in a
// process of its own. It waits for readiness (a health URL, a TCP address or
// a line on stdout), captures stdout and stderr to files, shows their tail
// when a process dies or never becomes ready, and always stops the whole
// process group: a graceful signal, a grace period, then SIGKILL.
//
// Nothing it starts outlives resctl: every child is started with Linux's
// parent-death signal from one OS thread that lives as long as resctl
// (the signal follows the thread that forked, not the process), and with
// Spec.Supervisor under a small supervisor (Supervise) that stops the
// child's whole group, grandchildren included, when resctl dies. Started
// processes are recorded in a state directory so that CleanupStale can
// stop what a run killed together with its supervisors left behind.
//
// service imports nothing of resctl's.
package service
