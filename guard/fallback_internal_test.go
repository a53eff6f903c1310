package guard

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGRPCFrame(t *testing.T) {
	tests := []struct {
		name   string
		msg    []byte
		header []byte // the five bytes before the message
	}{
		{"an empty message", nil, []byte{0, 0, 0, 0, 0}},
		{"a short message", []byte("\x08\x2a"), []byte{0, 0, 0, 0, 2}},
		{"a length over one byte", bytes.Repeat([]byte{'x'}, 300), []byte{0, 0, 0, 1, 44}},
		{"a length over two bytes", bytes.Repeat([]byte{'x'}, 70_000), []byte{0, 0, 1, 0x11, 0x70}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := grpcFrame(tt.msg)
			if len(got) != 5+len(tt.msg) {
				t.Fatalf("frame of %d bytes, want %d", len(got), 5+len(tt.msg))
			}
			if !bytes.Equal(got[:5], tt.header) || !bytes.Equal(got[5:], tt.msg) {
				t.Errorf("frame starts % x, want % x and then the message", got[:5], tt.header)
			}
		})
	}
}

func TestIsGRPCCall(t *testing.T) {
	tests := []struct {
		contentType string
		want        bool
	}{
		{"application/grpc", true},
		{"application/grpc+proto", true},
		{"application/grpc;charset=utf-8", true},
		{"application/grpc-web", false},
		{"application/grpc-web+proto", false},
		{"application/json", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.contentType, "/", "_"), func(t *testing.T) {
			r := httptest.NewRequest("POST", "/pkg.Svc/Get", nil)
			r.Header.Set("Content-Type", tt.contentType)
			if got := isGRPC(r); got != tt.want {
				t.Errorf("isGRPC(%q) = %v, want %v", tt.contentType, got, tt.want)
			}
		})
	}
}

// TestAccepts: a kept body in an encoding is replayed only to a client
// that lists the encoding.
func TestAccepts(t *testing.T) {
	tests := []struct {
		header, value, encoding string
		grpc, want              bool
	}{
		{"", "", "", false, true},
		{"", "", "gzip", false, false},
		{"Accept-Encoding", "br, gzip;q=0.8", "gzip", false, true},
		{"Accept-Encoding", "br", "gzip", false, false},
		{"Grpc-Accept-Encoding", "identity,gzip", "gzip", true, true},
		{"Accept-Encoding", "gzip", "gzip", true, false}, // gRPC reads its own header
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set(tt.header, tt.value)
		}
		if got := accepts(r, tt.encoding, tt.grpc); got != tt.want {
			t.Errorf("accepts(%s: %q, %q, grpc %v) = %v, want %v", tt.header, tt.value, tt.encoding, tt.grpc, got, tt.want)
		}
	}
}
