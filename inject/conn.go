package inject

import (
	"context"
	"time"

	"github.com/resctl/resctl/quantity"
)

// Direction names the bytes of a proxied connection a fault acts on.
type Direction string

// Directions, named as Toxiproxy's streams are.
const (
	// Upstream bytes go from the client to the target.
	Upstream Direction = "upstream"
	// Downstream bytes go from the target back to the client.
	Downstream Direction = "downstream"
	// Both acts on either direction.
	Both Direction = "both"
)

// ConnMatch selects the connections a fault acts on and in which direction.
// Every connection fault kind embeds it.
type ConnMatch struct {
	// Direction is upstream, downstream or both.
	Direction Direction `yaml:"direction"`
	// Percent is the share of connections the fault acts on, drawn once
	// per connection.
	Percent quantity.Percent `yaml:"percent"`
	// Schedule counts connections (first N, every Nth) and time.
	Schedule Schedule `yaml:"schedule"`
}

func defaultConnMatch() ConnMatch { return ConnMatch{Direction: Downstream, Percent: DefaultPercent} }

// Selector implements Spec: connections are selected by percent and
// schedule only.
func (m ConnMatch) Selector() Match { return Match{Percent: m.Percent, Schedule: m.Schedule} }

func (m ConnMatch) check(problem func(field, msg string)) {
	switch m.Direction {
	case Upstream, Downstream, Both:
	default:
		problem("direction", "must be upstream, downstream or both")
	}
	m.Selector().checkRate(problem)
}

// Acts reports whether the fault acts on bytes moving in direction d.
func (m ConnMatch) Acts(d Direction) bool { return m.Direction == Both || m.Direction == d }

// ConnFault acts on proxied TCP connections the Board drew it for.
type ConnFault interface {
	// Stream returns the fault's handler for the bytes moving in one
	// direction (Upstream or Downstream) of one connection, or nil when it
	// leaves that direction alone. The proxy calls it once per direction
	// when the fault first meets the connection, which is when timers of
	// the fault (a reset after a timeout) start.
	Stream(dir Direction, c Conn) Stream
}

// Stream handles the bytes moving in one direction of one connection.
type Stream interface {
	// Pass handles one chunk read from the source: it may delay it, split
	// it, drop it, or end the connection, and hands on what goes through
	// to next. It returns promptly once ctx is done; a non-nil error ends
	// the connection.
	Pass(ctx context.Context, p []byte, next func([]byte) error) error
}

// Conn is the proxy's handle on one connection, for faults that end it or
// act on a timer. Its methods are safe to call from any goroutine and more
// than once.
type Conn interface {
	// Reset closes both sides with a TCP RST.
	Reset()
	// Close closes both sides in an orderly way.
	Close()
	// AfterFunc runs f after d unless the connection has ended; the
	// proxy stops the timers of a connection when it ends.
	AfterFunc(d time.Duration, f func())
}

// ConnRefuser is a ConnFault that acts when a connection is accepted: the
// proxy resets connections the fault is drawn for instead of forwarding
// them. Connections already open are left alone.
type ConnRefuser interface {
	ConnFault
	RefuseConn()
}

// CloseDelayer is a ConnFault that holds back the end of a connection: when
// the source of a direction it acts on closes, the proxy waits CloseDelay
// before passing the close on.
type CloseDelayer interface {
	ConnFault
	CloseDelay(dir Direction) time.Duration
}
