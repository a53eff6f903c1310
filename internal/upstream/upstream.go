// Package upstream checks the addresses resctl's proxies forward to, so
// that a scenario and a proxy config file refuse the same values with the
// same words.
package upstream

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Check reports whether a proxy can forward to upstream: host:port for a
// tcp proxy, an http:// or https:// URL with a host for the others. A
// port, where one is given, must be 1..65535. The error says what is wrong
// with the value and, where a fix is known, shows it; it does not repeat
// the key the value came from, which the caller names.
func Check(tcp bool, upstream string) error {
	if tcp {
		return checkHostPort(upstream)
	}
	return checkURL(upstream)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		if _, _, err := net.SplitHostPort(s); err == nil && !strings.Contains(s, "/") {
			return fmt.Errorf("%q is not a URL: write http://%s", s, s)
		}
		return fmt.Errorf("%q is not an http:// or https:// URL, e.g. http://127.0.0.1:8080", s)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host, e.g. %s://127.0.0.1%s", s, u.Scheme, portSuffix(u.Port()))
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p); err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
	}
	return nil
}

func checkHostPort(s string) error {
	if strings.Contains(s, "://") {
		return fmt.Errorf("%q is a URL; a tcp proxy takes host:port, e.g. 127.0.0.1:5432", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port, e.g. 127.0.0.1:5432", s)
	}
	if host == "" {
		return fmt.Errorf("%q has no host, e.g. 127.0.0.1:%s", s, port)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return nil
}

// checkPort accepts a port number in 1..65535, and no service name.
func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %s is not a number in 1..65535", p)
	}
	return nil
}

func portSuffix(port string) string {
	if port == "" {
		return ""
	}
	return ":" + port
}
