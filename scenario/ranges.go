package scenario

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/resctl/resctl/quantity"
)

// MaxRate is the most requests a second a scenario may ask for, in all
// phases and shapes. The pacer times every request to the microsecond, so
// past a million a second requests would share their instant; and one
// machine sends far fewer over HTTP.
const MaxRate = quantity.Rate(1_000_000)

// RuntimeGrace is added to a runtime fault's phase to make its TTL: the
// agent ends it on its own even if resctl dies, a little after the phase.
const RuntimeGrace = 5 * time.Second

// validateRanges checks what decoding alone cannot: every port written in
// the file is one a socket can have, and every rate one resctl can send.
func (v *validator) validateRanges() {
	s := v.s
	v.checkPort("target.url", s.Target.URL, false)
	v.checkPort("target.agent", s.Target.Agent, false)
	v.checkPort("target.ready", s.Target.Ready, false)
	for i, svc := range s.Services {
		// A template's port is one of ports, checked with them.
		if !strings.Contains(svc.Ready, "{{") {
			v.checkPort(fmt.Sprintf("services[%d].ready", i), svc.Ready, false)
		}
	}
	for _, np := range s.AllProxies() {
		path := proxyPath(np.Name)
		v.checkPort(path+".listen", np.Listen, true)
		v.checkPort(path+".admin", np.Admin, true)
	}
	for name, where := range s.Scrape.Endpoints {
		if strings.Contains(where, "://") {
			v.checkPort("scrape.endpoints."+name, where, false)
		}
	}

	v.checkRate("load.rate", s.Load.Rate)
	for i, ph := range s.Phases {
		p := fmt.Sprintf("phases[%d].rate", i)
		r := ph.Rate
		v.checkRate(p, r.Constant)
		if r.Ramp != nil {
			v.checkRate(p+".ramp.from", r.Ramp.From)
			v.checkRate(p+".ramp.to", r.Ramp.To)
		}
		for j, step := range r.Steps {
			v.checkRate(fmt.Sprintf("%s.steps[%d]", p, j), step)
		}
		if r.Spike != nil {
			v.checkRate(p+".spike.base", r.Spike.Base)
			v.checkRate(p+".spike.peak", r.Spike.Peak)
		}
	}
}

// checkPort reports a port outside 1–65535 in addr, a URL or host:port;
// a listen address may also give 0, for a free port. An address that does
// not parse is left to the checks of its own key.
func (v *validator) checkPort(path, addr string, listen bool) {
	var port string
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return
		}
		port = u.Port()
	} else if _, p, err := net.SplitHostPort(addr); err == nil {
		port = p
	}
	if port == "" {
		return
	}
	lo := 1
	if listen {
		lo = 0
	}
	if n, err := strconv.Atoi(port); err != nil || n < lo || n > 65535 {
		if listen {
			v.report(path, "port %s is outside 1–65535 (or 0 for a free port)", port)
			return
		}
		v.report(path, "port %s is outside 1–65535", port)
	}
}

// checkRate reports a rate over MaxRate, saying why.
func (v *validator) checkRate(path string, r quantity.Rate) {
	if r > MaxRate {
		v.report(path, "%s is more than resctl can send: at most %s, as its pacer times each request to the microsecond (and one machine sends far fewer over HTTP)", r, MaxRate)
	}
}
