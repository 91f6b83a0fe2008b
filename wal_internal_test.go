package mapkv

import (
	"math/rand/v2"
	"testing"
)

// TestTrimZeros compares trimZeros with a byte-by-byte scan on buffers
// whose last nonzero byte is anywhere (or absent), with nonzero bytes
// before it from dense to none at all.
func TestTrimZeros(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		b := make([]byte, rng.IntN(300))
		if len(b) > 0 && rng.IntN(8) != 0 {
			last := rng.IntN(len(b))
			density := rng.IntN(4) // 0: only the last byte is nonzero
			for i := range last {
				if density > 0 && rng.IntN(4*density) == 0 {
					b[i] = byte(rng.Uint32())
				}
			}
			b[last] = byte(1 + rng.IntN(255))
		}
		want := len(b)
		for want > 0 && b[want-1] == 0 {
			want--
		}
		if got := trimZeros(b); got != want {
			t.Fatalf("trimZeros of %d bytes ending %x: %d, want %d", len(b), b[max(0, len(b)-80):], got, want)
		}
	}
}
