// Package demopb is the Go code protoc generates from
// testdata/protos/demo.proto: the messages and the Orders service of the
// demo target's gRPC face. Regenerate it with `make generate`; edit the
// .proto, never the .pb.go files.
//
// It imports only protobuf and gRPC.
package demopb
