package inject

import (
	"encoding/binary"
	"testing"
)

// TestGRPCFrames_Feed cuts a body of length-prefixed messages into pieces
// of every size and checks that feeding them stops exactly at the end of
// the message asked for, wherever the pieces break the prefixes.
func TestGRPCFrames_Feed(t *testing.T) {
	sizes := []int{3, 0, 1, 300} // an empty message counts too
	var body []byte
	ends := []int{0} // ends[n] is where message n ends
	for _, n := range sizes {
		var prefix [5]byte
		binary.BigEndian.PutUint32(prefix[1:], uint32(n))
		body = append(body, prefix[:]...)
		body = append(body, make([]byte, n)...)
		ends = append(ends, len(body))
	}
	for piece := 1; piece <= len(body); piece++ {
		for upto := range uint64(len(sizes) + 2) {
			var f grpcFrames
			consumed := 0
			for p := body; len(p) > 0; p = p[min(piece, len(p)):] {
				chunk := p[:min(piece, len(p))]
				n := f.feed(chunk, upto)
				consumed += n
				if n < len(chunk) {
					break
				}
			}
			want, wantMsgs := len(body), uint64(len(sizes))
			if upto <= uint64(len(sizes)) {
				want, wantMsgs = ends[upto], upto
			}
			if consumed != want || f.msgs != wantMsgs {
				t.Fatalf("pieces of %d, up to message %d: consumed %d, %d messages; want %d, %d", piece, upto, consumed, f.msgs, want, wantMsgs)
			}
		}
	}
}
