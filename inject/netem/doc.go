// Package netem injects real network faults on Linux: delay, loss,
// duplication and corruption with tc netem, a rate with tbf, and silent
// partitions, on a veth link between two network namespaces that resctl
// creates for the experiment. It shells out to iproute2 (ip, tc) and
// needs root.
//
// Pair is the two namespaces and their link. Link puts a Pair under a
// proxy's upstream connections (its DialContext crosses the pair to a
// relay that reaches the real upstream), and Spec is a scenario's
// `network` fault applied to it.
//
// Namespaces are named resctl-PID-NAME-a/-b after the process that made
// them, so a run killed before it could clean up is found by the next one
// (CleanupStale, also run by `resctl inject clear --all`) and removed.
//
// Where the kernel lacks netem, iptables stands in for it: loss with the
// statistic match, duplication with TEE, delay with an NFQUEUE that a
// user-space delayer (nfqueue_linux.go) holds; corruption has no stand-in.
// Where faults cannot be made at all (not root, not Linux, no iptables for
// a stand-in), the calls return ErrUnsupported with the reason, and tests
// skip with it.
//
// It imports nothing of resctl's but quantity.
package netem
