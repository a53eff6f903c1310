package scenario

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/internal/suggest"
	"github.com/resctl/resctl/internal/upstream"
)

// Protocols a proxy may speak.
var protocols = []string{"http", "h2c", "grpc", "tcp"}

// reservedProxyNames are names a named proxy cannot take: they are other
// scrape sources, or the main proxy's.
var reservedProxyNames = []string{MainProxy, EndpointTarget, SourceRuntime}

// validateProxies fills in the named proxies' defaults, checks every
// proxy, and resolves each fault against the proxy it names.
func (v *validator) validateProxies() {
	s := v.s
	if _, set := v.At["proxy"]; !set && len(s.Proxies) > 0 {
		s.Proxy = Proxy{} // only the named proxies
	}
	// gRPC load goes through a gRPC proxy unless the file says otherwise.
	if _, set := v.At["proxy.protocol"]; !set && s.Load.GRPC != nil && s.HasProxy() && v.frontsTarget(NamedProxy{MainProxy, s.Proxy}) {
		s.Proxy.Protocol = "grpc"
	}
	if s.Load.GRPC != nil && s.HasProxy() && v.frontsTarget(NamedProxy{MainProxy, s.Proxy}) && s.Proxy.Protocol == "http" {
		v.report("proxy.protocol", "gRPC load needs a grpc, h2c or tcp proxy in front of the target; an http proxy speaks HTTP/1.1 to it")
	}
	for name, p := range s.Proxies {
		path := proxyPath(name)
		switch {
		case !strictyaml.ValidEnvName(name):
			v.report(path, "%q is not a proxy name: use letters, digits and _", name)
		case slices.Contains(reservedProxyNames, name):
			v.report(path, "%q is reserved; name the proxy after the dependency it fronts, e.g. db", name)
		}
		p.Protocol = cmp.Or(p.Protocol, DefaultProtocol)
		p.Listen = cmp.Or(p.Listen, DefaultProxyListen)
		p.Admin = cmp.Or(p.Admin, DefaultAdminListen)
		if _, several := v.At[path+".upstreams"]; p.Upstream == "" && !several {
			v.report(path+".upstream", "is required: the dependency this proxy fronts, e.g. http://127.0.0.1:9000, or 127.0.0.1:6379 with protocol: tcp (or upstreams: a list of its instances)")
		}
		v.validateUpstreams(path, &p)
		s.Proxies[name] = p
	}
	if s.HasProxy() {
		v.validateUpstreams(proxyPath(MainProxy), &s.Proxy)
	}

	addrs := map[string]string{} // fixed listen address → whose
	for _, np := range s.AllProxies() {
		path := proxyPath(np.Name)
		if !slices.Contains(protocols, np.Protocol) {
			v.report(path+".protocol", "unknown protocol %q; use http, h2c, grpc or tcp", np.Protocol)
		} else if np.Protocol == "tcp" && (len(np.Guard) > 0 || len(np.Routes) > 0) {
			v.report(path+".protocol", "guard chains need an http, h2c or grpc proxy; a tcp proxy moves bytes and knows no requests")
		}
		if up := np.Upstream; up != "" {
			if err := upstream.Check(np.Protocol == "tcp", up); err != nil {
				v.report(path+".upstream", "%v", err)
			}
		}
		v.validateLimits(path, np.Proxy)
		for _, l := range []struct{ key, addr string }{{"listen", np.Listen}, {"admin", np.Admin}} {
			where := path + "." + l.key
			for other, whose := range addrs {
				if sameAddr(l.addr, other) {
					v.report(where, "%s is already the address of %s; give each proxy a port of its own (or :0 for a free one)", l.addr, whose)
				}
			}
			if fixedPort(l.addr) {
				addrs[l.addr] = where
			}
		}
	}

	all := s.AllProxies()
	for i := range s.Phases {
		network := map[string]bool{} // proxies with a network fault in the phase
		for j := range s.Phases[i].Faults {
			f := &s.Phases[i].Faults[j]
			if f.kindNode == nil {
				continue // a runtime fault, or one the decoder rejected
			}
			path := fmt.Sprintf("phases[%d].faults[%d]", i, j)
			kindNode := f.kindNode // resolve forgets it
			if f.Proxy == "" {
				switch {
				case s.HasProxy():
					f.Proxy = MainProxy
				case len(all) == 1:
					f.Proxy = all[0].Name
				default:
					v.Add(strictyaml.NodePos(f.kindNode), path, "name the proxy this fault acts on: proxy: one of %s", strings.Join(v.proxyNames(), ", "))
					continue
				}
			}
			np, ok := findProxy(all, f.Proxy)
			if !ok {
				at := strictyaml.NodePos(f.proxyNode)
				if near, close := suggest.Closest(f.Proxy, v.proxyNames()); close {
					v.Add(at, path+".proxy", "no proxy named %q (did you mean %q?)", f.Proxy, near)
				} else {
					v.Add(at, path+".proxy", "no proxy named %q; proxies: %s", f.Proxy, strings.Join(v.proxyNames(), ", "))
				}
				continue
			}
			f.resolve(v.Decoder, path, inject.LayerOfProtocol(np.Protocol))
			if f.Network != nil {
				if network[f.Proxy] {
					v.Add(strictyaml.NodePos(kindNode), path, "proxy %q already has a network fault in this phase: its link takes one at a time; put the parameters in one (delay, loss and rate go together)", f.Proxy)
				}
				network[f.Proxy] = true
			}
		}
	}
}

func (v *validator) proxyNames() []string {
	var out []string
	for _, p := range v.s.AllProxies() {
		out = append(out, p.Name)
	}
	return out
}

func findProxy(all []NamedProxy, name string) (NamedProxy, bool) {
	for _, p := range all {
		if p.Name == name {
			return p, true
		}
	}
	return NamedProxy{}, false
}

// fixedPort says whether addr names a port, rather than :0 for a free one.
func fixedPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port != "0" && port != ""
}

// sameAddr says whether two listen addresses would collide: the same port
// on the same host, or on any host when one of them listens on all.
func sameAddr(a, b string) bool {
	if !fixedPort(a) || !fixedPort(b) {
		return false
	}
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb {
		return false
	}
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	loop := func(h string) string {
		if h == "localhost" {
			return "127.0.0.1"
		}
		return h
	}
	return loop(ha) == loop(hb) || any(ha) || any(hb)
}
