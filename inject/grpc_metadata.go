package inject

import "strings"

// GRPCMetadataSpec adds, replaces or removes metadata of matching gRPC
// calls: request metadata before the call is forwarded (a gateway that
// strips authorization or a deadline-carrying key), or the response's
// initial metadata (headers). It is the HTTP header fault with gRPC's
// selectors. Trailers are the upstream's: abort and stream_error set
// statuses.
type GRPCMetadataSpec struct {
	GRPCMatch `yaml:",inline"`
	// Side is request or response (the default).
	Side string `yaml:"side"`
	// Set adds keys, replacing any of the same name.
	Set map[string]string `yaml:"set"`
	// Remove deletes keys.
	Remove []string `yaml:"remove"`
}

var _ HTTPSpec = (*GRPCMetadataSpec)(nil)

// Kind implements Spec.
func (*GRPCMetadataSpec) Kind() string { return "metadata" }

// Check implements Spec.
func (s *GRPCMetadataSpec) Check(problem func(field, msg string)) {
	s.GRPCMatch.check(problem)
	h := HeaderSpec{Side: s.Side, Set: s.Set, Remove: s.Remove}
	h.checkEdit(problem)
	for name := range s.Set {
		if statusMetadata(name) {
			problem("set", name+" carries the call's status; use abort or stream_error")
		}
	}
	for _, name := range s.Remove {
		if statusMetadata(name) {
			problem("remove", name+" carries the call's status; use abort or stream_error")
		}
	}
}

// statusMetadata reports the keys that carry a call's status and framing:
// editing them breaks the call rather than changes it, and the status
// faults say what they mean. Other reserved keys stay editable: removing
// grpc-timeout from requests is how a gateway that drops deadlines looks.
func statusMetadata(name string) bool {
	switch strings.ToLower(name) {
	case "grpc-status", "grpc-message", "grpc-status-details-bin", "content-type", "te":
		return true
	}
	return false
}

// Build implements HTTPSpec.
func (s *GRPCMetadataSpec) Build() HTTPFault {
	return &header{request: s.Side == SideRequest, set: s.Set, remove: s.Remove}
}
