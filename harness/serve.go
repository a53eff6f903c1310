package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/internal/strictyaml"
)

// DefaultProxyName names the proxy of `resctl proxy` given by flags.
const DefaultProxyName = "default"

// ProxyConfig is one named proxy of a standalone harness.
type ProxyConfig struct {
	Name string `yaml:"name"`
	// Listen is the proxy's address; "127.0.0.1:0" picks a free port.
	Listen string `yaml:"listen"`
	// Upstream is a base URL for http and h2c, host:port for tcp.
	Upstream string `yaml:"upstream"`
	// Protocol is http (the default), h2c or tcp.
	Protocol string `yaml:"protocol"`
}

// ConfigError lists every problem of a proxy config file, each with its
// place in the file.
type ConfigError struct {
	File     string
	Problems []strictyaml.Problem
}

func (e *ConfigError) Error() string {
	s := ""
	for i, p := range e.Problems {
		if i > 0 {
			s += "\n"
		}
		s += fmt.Sprintf("%s:%d:%d: %s: %s", e.File, p.Line, p.Col, p.Path, p.Msg)
	}
	return s
}

// ReadProxyConfig reads a YAML list of proxies, strictly: unknown keys,
// missing names or upstreams, duplicate names and unknown protocols are
// all reported, with file:line:col.
func ReadProxyConfig(path string) ([]ProxyConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, &ConfigError{File: path, Problems: []strictyaml.Problem{{Line: 1, Col: 1, Msg: "YAML syntax error: " + err.Error()}}}
	}
	d := strictyaml.New()
	var out []ProxyConfig
	if len(root.Content) == 0 {
		d.Add(strictyaml.Pos{Line: 1, Col: 1}, "", "empty file: list proxies as - {name: web, upstream: http://127.0.0.1:8080}")
	} else {
		d.Decode(root.Content[0], reflect.ValueOf(&out).Elem(), "")
	}
	seen := map[string]bool{}
	for i := range out {
		p := &out[i]
		path := fmt.Sprintf("[%d]", i)
		pos := strictyaml.NodePos(d.At[path])
		if p.Protocol == "" {
			p.Protocol = ProtocolHTTP
		}
		if p.Listen == "" {
			p.Listen = "127.0.0.1:0"
		}
		switch {
		case p.Name == "":
			d.Add(pos, path+".name", "every proxy needs a name")
		case seen[p.Name]:
			d.Add(pos, path+".name", "duplicate name %q", p.Name)
		}
		seen[p.Name] = true
		if err := checkProxyConfig(*p); err != nil {
			d.Add(pos, path, "%v", err)
		}
	}
	if len(d.Problems) > 0 {
		return nil, &ConfigError{File: path, Problems: d.Problems}
	}
	return out, nil
}

func checkProxyConfig(p ProxyConfig) error {
	switch p.Protocol {
	case ProtocolHTTP, ProtocolH2C, ProtocolTCP:
	default:
		return fmt.Errorf("protocol %q: use http, h2c or tcp", p.Protocol)
	}
	if p.Upstream == "" {
		return errors.New("upstream is missing")
	}
	return nil
}

// ServeOptions configure a standalone harness: several proxies and one
// admin API.
type ServeOptions struct {
	Proxies     []ProxyConfig
	AdminListen string
	Token       string
	Seed        uint64
	Version     string
	Logger      *slog.Logger
}

// Started describes a running standalone harness.
type Started struct {
	AdminURL string
	Proxies  []ProxyConfig // with their bound listen addresses
}

// Serve runs the proxies and the admin API until ctx ends (Ctrl-C), then
// clears every fault and closes everything. ready is called once all
// listen.
func Serve(ctx context.Context, opts ServeOptions, ready func(Started)) (err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := CheckAdminListen(opts.AdminListen, opts.Token); err != nil {
		return err
	}
	admin := NewAdmin(AdminOptions{Token: opts.Token, Version: opts.Version, Seed: opts.Seed, Logger: logger})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var closers []func(context.Context) error
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		admin.Reset() // every fault off before anything closes
		for i := len(closers) - 1; i >= 0; i-- {
			err = errors.Join(err, closers[i](cctx))
		}
	}()
	started := Started{}
	for _, pc := range opts.Proxies {
		if err := checkProxyConfig(pc); err != nil {
			return fmt.Errorf("proxy %q: %w", pc.Name, err)
		}
		board := inject.NewBoard(opts.Seed, nil)
		prometheus.WrapRegistererWith(prometheus.Labels{"proxy": pc.Name}, reg).MustRegister(board)
		var t Target
		if pc.Protocol == ProtocolTCP {
			p, err := StartTCP(TCPOptions{Upstream: pc.Upstream, Listen: pc.Listen, Board: board, Logger: logger})
			if err != nil {
				return fmt.Errorf("proxy %q: %w", pc.Name, err)
			}
			closers = append(closers, p.Close)
			t = p
		} else {
			p, err := Start(Options{Upstream: pc.Upstream, Listen: pc.Listen, Protocol: pc.Protocol, Board: board, Logger: logger})
			if err != nil {
				return fmt.Errorf("proxy %q: %w", pc.Name, err)
			}
			closers = append(closers, p.Close)
			t = p
		}
		if err := admin.Add(pc.Name, pc.Protocol, t); err != nil {
			return err
		}
		pc.Listen = t.Addr()
		started.Proxies = append(started.Proxies, pc)
	}
	closers = append(closers, admin.Close)
	srv, err := ListenAdmin(opts.AdminListen, admin, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if err != nil {
		return err
	}
	closers = append(closers, srv.Close)
	started.AdminURL = srv.URL()
	if ready != nil {
		ready(started)
	}
	<-ctx.Done()
	return nil
}
