package inject

// RefuseSpec refuses new connections: the proxy accepts each one the fault
// is drawn for and resets it at once, as a host with nothing listening (or
// a full accept queue behind a load balancer) does. Open connections are
// left alone.
type RefuseSpec struct {
	ConnMatch `yaml:",inline"`
}

var _ ConnSpec = (*RefuseSpec)(nil)

// Kind implements Spec.
func (*RefuseSpec) Kind() string { return "refuse" }

// Check implements Spec.
func (s *RefuseSpec) Check(problem func(field, msg string)) { s.ConnMatch.check(problem) }

// BuildConn implements ConnSpec.
func (s *RefuseSpec) BuildConn() ConnFault { return refuse{} }

type refuse struct{}

var _ ConnRefuser = refuse{}

func (refuse) Stream(Direction, Conn) Stream { return nil }

// RefuseConn marks the fault as acting at accept.
func (refuse) RefuseConn() {}
