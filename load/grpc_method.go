package load

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/jhump/protoreflect/grpcreflect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// splitCall splits "pkg.Service/Method" (also "/pkg.Service/Method", the
// wire form, and "pkg.Service.Method") into service and method.
func splitCall(call string) (service, method string, ok bool) {
	c := strings.TrimPrefix(strings.TrimPrefix(call, "/"), ".")
	i := strings.LastIndexByte(c, '/')
	if i < 0 {
		i = strings.LastIndexByte(c, '.')
	}
	if i < 0 {
		return "", "", false
	}
	service, method = c[:i], c[i+1:]
	if service == "" || method == "" || strings.ContainsAny(service, "/ ") || strings.ContainsAny(method, "./ ") {
		return "", "", false
	}
	return service, method, true
}

// resolveMethod finds the method opts.Call names: in opts.Proto, in
// opts.Protoset, or else by asking the server over cc.
func resolveMethod(ctx context.Context, opts GRPCOptions, cc *grpc.ClientConn) (protoreflect.MethodDescriptor, error) {
	service, method, _ := splitCall(opts.Call)
	name := protoreflect.FullName(service)
	var sd protoreflect.ServiceDescriptor
	switch {
	case opts.Proto != "":
		files, err := parseProto(ctx, opts.Proto, opts.ImportPaths)
		if err != nil {
			return nil, fmt.Errorf("load: grpc: parse %s: %w", opts.Proto, err)
		}
		if sd = findService(files, name); sd == nil {
			return nil, fmt.Errorf("load: grpc: %s defines no service %q (it has %s)", opts.Proto, service, serviceNames(files))
		}
	case opts.Protoset != "":
		files, err := readProtoset(opts.Protoset)
		if err != nil {
			return nil, fmt.Errorf("load: grpc: read protoset %s: %w", opts.Protoset, err)
		}
		if sd = findService(files, name); sd == nil {
			return nil, fmt.Errorf("load: grpc: %s defines no service %q (it has %s)", opts.Protoset, service, serviceNames(files))
		}
	default:
		var err error
		if sd, err = reflectService(ctx, cc, opts.Target, service); err != nil {
			return nil, err
		}
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		var names []string
		for i := range sd.Methods().Len() {
			names = append(names, string(sd.Methods().Get(i).Name()))
		}
		return nil, fmt.Errorf("load: grpc: service %s has no method %q (it has %s)", service, method, strings.Join(names, ", "))
	}
	return md, nil
}

// parseProto compiles a .proto file as protoc would: named relative to the
// import path that holds it, or else by its base name in its own directory.
func parseProto(ctx context.Context, file string, importPaths []string) ([]protoreflect.FileDescriptor, error) {
	name, paths := filepath.Base(file), append([]string{filepath.Dir(file)}, importPaths...)
	for _, ip := range importPaths {
		if rel, err := filepath.Rel(ip, file); err == nil && !strings.HasPrefix(rel, "..") {
			name, paths = filepath.ToSlash(rel), importPaths
			break
		}
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: paths}),
	}
	compiled, err := c.Compile(ctx, name)
	if err != nil {
		return nil, err
	}
	files := make([]protoreflect.FileDescriptor, len(compiled))
	for i, f := range compiled {
		files[i] = f
	}
	return files, nil
}

func readProtoset(file string) ([]protoreflect.FileDescriptor, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a FileDescriptorSet: %w", err)
	}
	reg, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, err
	}
	var files []protoreflect.FileDescriptor
	reg.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		files = append(files, fd)
		return true
	})
	return files, nil
}

// reflectService asks the server for service by gRPC server reflection.
func reflectService(ctx context.Context, cc *grpc.ClientConn, target, service string) (protoreflect.ServiceDescriptor, error) {
	client := grpcreflect.NewClientAuto(ctx, cc)
	defer client.Reset()
	sd, err := client.ResolveService(service)
	if err == nil {
		return sd.UnwrapService(), nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	switch {
	case grpcreflect.IsElementNotFoundError(err):
		have, lerr := client.ListServices()
		if lerr != nil {
			return nil, fmt.Errorf("load: grpc: %s serves no service %q", target, service)
		}
		return nil, fmt.Errorf("load: grpc: %s serves no service %q (it has %s)", target, service, strings.Join(have, ", "))
	case status.Code(err) == codes.Unimplemented:
		return nil, fmt.Errorf("load: grpc: %s does not offer server reflection; name a Proto or Protoset that defines %s", target, service)
	case status.Code(err) == codes.Unavailable:
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, target, status.Convert(err).Message())
	}
	return nil, fmt.Errorf("load: grpc: server reflection at %s: %w", target, err)
}

// findService looks for service in files and everything they import.
func findService(files []protoreflect.FileDescriptor, service protoreflect.FullName) protoreflect.ServiceDescriptor {
	var sd protoreflect.ServiceDescriptor
	walkFiles(files, func(f protoreflect.FileDescriptor) bool {
		if f.Package() == service.Parent() {
			sd = f.Services().ByName(service.Name())
		}
		return sd == nil
	})
	return sd
}

// serviceNames lists the services files define, for error messages.
func serviceNames(files []protoreflect.FileDescriptor) string {
	var names []string
	walkFiles(files, func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			names = append(names, string(f.Services().Get(i).FullName()))
		}
		return true
	})
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// walkFiles calls f for each file and its imports, each once, until f
// returns false.
func walkFiles(files []protoreflect.FileDescriptor, f func(protoreflect.FileDescriptor) bool) {
	seen := map[string]bool{}
	var walk func(protoreflect.FileDescriptor) bool
	walk = func(fd protoreflect.FileDescriptor) bool {
		if seen[fd.Path()] {
			return true
		}
		seen[fd.Path()] = true
		if !f(fd) {
			return false
		}
		for i := range fd.Imports().Len() {
			if !walk(fd.Imports().Get(i).FileDescriptor) {
				return false
			}
		}
		return true
	}
	for _, fd := range files {
		if !walk(fd) {
			return
		}
	}
}

// protoset serialises the file that defines md, with its imports, as a
// FileDescriptorSet: the form ghz takes a resolved method in.
func protoset(md protoreflect.MethodDescriptor) ([]byte, error) {
	var set descriptorpb.FileDescriptorSet
	seen := map[string]bool{}
	var add func(protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) { // imports first, as protoc writes them
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := range fd.Imports().Len() {
			add(fd.Imports().Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(md.ParentFile())
	b, err := proto.Marshal(&set)
	if err != nil {
		return nil, fmt.Errorf("load: grpc: serialise descriptors: %w", err)
	}
	return b, nil
}
