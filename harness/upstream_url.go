package harness

import "github.com/resctl/resctl/internal/upstream"

// CheckUpstream reports whether a proxy of the protocol can forward to
// upstream: host:port for ProtocolTCP, an http:// or https:// URL with a
// host for the others, a port 1..65535 where one is given. The error
// names the value, not the key it came from.
func CheckUpstream(protocol, up string) error {
	return upstream.Check(protocol == ProtocolTCP, up)
}
