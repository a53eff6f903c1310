// Package loopback gives tests loopback ports for the programs they start.
// It must not import anything of resctl's.
package loopback

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
)

// Quiet ports are drawn from below every kernel's ephemeral range (Linux
// 32768–60999; BSDs, macOS and Windows 49152–65535).
const (
	quietLow  = 20000
	quietHigh = 32000
)

// QuietPort returns a loopback TCP port nothing listens on, for a program
// a test starts and tells where to listen. A port from "127.0.0.1:0" comes
// from the ephemeral range, so between the test closing it and the
// program binding it, any outgoing connection on the machine may be given
// it; a port from below that range only another bind to that very number
// can take, and QuietPort draws its numbers at random.
func QuietPort() (int, error) {
	for range 200 {
		port := quietLow + rand.IntN(quietHigh-quietLow)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		if err := ln.Close(); err != nil {
			return 0, err
		}
		return port, nil
	}
	return 0, errors.New("no free loopback port below the ephemeral range after 200 tries")
}

// QuietAddr is QuietPort as "127.0.0.1:PORT".
func QuietAddr() (string, error) {
	port, err := QuietPort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}
