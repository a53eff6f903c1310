// Package netem injects real network faults on Linux: delay, loss,
// duplication and corruption with tc netem, and partitions, on a veth link
// between two network namespaces that resctl creates for the experiment.
// It shells out to iproute2 (ip, tc) and needs root.
//
// Namespaces are named resctl-PID-NAME-a/-b after the process that made
// them, so a run killed before it could clean up is found by the next one
// (CleanupStale, also run by `resctl inject clear --all`) and removed.
//
// Where the kernel lacks netem (or the process is not root, or not on
// Linux), the calls return ErrUnsupported with the reason, and tests skip
// with it.
package netem
