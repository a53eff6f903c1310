package inject

import "github.com/resctl/resctl/quantity"

// GRPCBandwidthSpec slows the response bytes of matching gRPC calls to Rate
// bytes per second, as a congested link under a stream would: messages
// arrive late and in pieces, the call itself is untouched. It is the HTTP
// bandwidth fault with gRPC's selectors.
type GRPCBandwidthSpec struct {
	GRPCMatch `yaml:",inline"`
	// Rate is in bytes per second, e.g. 64KiB.
	Rate quantity.Bytes `yaml:"rate"`
}

var _ HTTPSpec = (*GRPCBandwidthSpec)(nil)

// Kind implements Spec.
func (*GRPCBandwidthSpec) Kind() string { return "bandwidth" }

// Check implements Spec.
func (s *GRPCBandwidthSpec) Check(problem func(field, msg string)) {
	s.GRPCMatch.check(problem)
	if s.Rate <= 0 {
		problem("rate", "must be above zero bytes per second, e.g. 64KiB")
	}
}

// Build implements HTTPSpec.
func (s *GRPCBandwidthSpec) Build() HTTPFault { return &bandwidth{rate: int64(s.Rate)} }
