package scenario

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/check"
	"github.com/resctl/resctl/internal/strictyaml"
)

// GRPCLoad is a load of gRPC calls: one method, called with the same
// request message and metadata every time, paced like HTTP load.
type GRPCLoad struct {
	// Call is the method's full name: "pkg.Service/Method".
	Call string `yaml:"call"`
	// Data is the request message, as a YAML map (or a JSON string); a
	// list is the stream of messages of a client-streaming call.
	Data GRPCData `yaml:"data"`
	// Metadata goes with every call.
	Metadata map[string]string `yaml:"metadata"`
	// Proto is a .proto file defining the service (with ImportPaths), or
	// Protoset a compiled FileDescriptorSet; with neither, the method is
	// found by server reflection.
	Proto string `yaml:"proto"`
	// ImportPaths are where the imports of Proto are found.
	ImportPaths []string `yaml:"import_paths"`
	// Protoset is a compiled FileDescriptorSet defining the service, instead
	// of Proto.
	Protoset string `yaml:"protoset"`
	// Expect checks every call: its status and fields of the response
	// message.
	Expect *check.Spec `yaml:"expect"`
}

// GRPCData is a request message written as YAML and kept as JSON, the
// form the gRPC load encodes from.
type GRPCData struct {
	JSON string
}

// DecodeNode implements strictyaml.NodeDecoder: a JSON string as is, or a
// YAML map or list turned into JSON.
func (g *GRPCData) DecodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return
	case n.Kind == yaml.ScalarNode:
		if !json.Valid([]byte(n.Value)) {
			d.Add(strictyaml.NodePos(n), path, "is neither a map of fields nor a JSON object")
			return
		}
		g.JSON = n.Value
		return
	}
	var v any
	if err := n.Decode(&v); err != nil {
		d.Add(strictyaml.NodePos(n), path, "%v", err)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		d.Add(strictyaml.NodePos(n), path, "cannot be a request message: %v", err)
		return
	}
	g.JSON = string(b)
}

// metadataKey is what gRPC allows as a metadata key.
var metadataKey = regexp.MustCompile(`^[0-9a-z_.-]+$`)

// validateGRPCLoad checks a gRPC load's own keys; whether the method
// exists and the data fits it is found out against the server (or the
// proto) before any call is sent.
func (v *validator) validateGRPCLoad() {
	g := v.s.Load.GRPC
	if g == nil {
		return
	}
	if len(v.s.Load.Requests) > 0 {
		v.report("load.grpc", "give requests (HTTP) or grpc, not both")
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(g.Call, "/"), "/")
	if !ok || svc == "" || method == "" || strings.Contains(method, "/") {
		v.report("load.grpc.call", "%q is not a full method name; write pkg.Service/Method, e.g. resctl.demo.v1.Orders/GetOrder", g.Call)
	}
	if g.Proto != "" && g.Protoset != "" {
		v.report("load.grpc.protoset", "give proto or protoset, not both")
	}
	for key, file := range map[string]string{"proto": g.Proto, "protoset": g.Protoset} {
		if file == "" {
			continue
		}
		if _, err := os.Stat(file); err != nil {
			v.report("load.grpc."+key, "%q cannot be read: %v", file, err)
		}
	}
	for k, val := range g.Metadata {
		p := "load.grpc.metadata." + k
		switch {
		case !metadataKey.MatchString(k):
			v.report(p, "%q is not a metadata key: use lower case letters, digits, - _ and .", k)
		case strings.HasPrefix(k, "grpc-"):
			v.report(p, "%q: grpc- keys are gRPC's own", k)
		case strings.HasPrefix(k, "x-resctl-"):
			v.report(p, "%q: resctl sets the x-resctl- keys itself (phase and sequence of each call)", k)
		case !strings.HasSuffix(k, "-bin") && strings.IndexFunc(val, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0:
			v.report(p, "the value must be printable ASCII (or the key end in -bin)")
		}
	}
	v.checkExpect("load.grpc.expect", g.Expect, true)
	if d := strings.TrimSpace(g.Data.JSON); d != "" && d[0] != '{' && d[0] != '[' {
		v.report("load.grpc.data", "give the request message as a map of fields (or a list, for a client stream)")
	}
}
