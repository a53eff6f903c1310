package harness

import "sync"

// copyBufferSize is the size of the buffers the reverse proxy copies
// bodies through, its own default.
const copyBufferSize = 32 << 10

// bufferPool lends the reverse proxy its copy buffers: without one it
// allocates a fresh 32 KiB for every response, which at a few thousand
// gRPC calls a second was most of what the proxy allocated.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
