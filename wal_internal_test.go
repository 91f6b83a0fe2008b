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

// TestWritePieces: writePieces hands its write function pieces that
// neither cross a multiple of smallFolio nor leave a gap, and that put
// every byte where one write of the whole vector would, for vectors of
// page-sized and odd-sized buffers at aligned and unaligned offsets.
func TestWritePieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var scratch [][]byte
	pattern := make([]byte, 251+4096*12+3*smallFolio)
	for i := range pattern {
		pattern[i] = byte(i % 251)
	}
	for range 100 {
		var iov [][]byte
		var want []byte
		for range 1 + rng.IntN(20) {
			n := 4096 * (1 + rng.IntN(12))
			if rng.IntN(4) == 0 {
				n = 1 + rng.IntN(3*smallFolio)
			}
			k := len(want) % 251 // bytes differ between neighbouring pieces
			b := pattern[k : k+n : k+n]
			iov = append(iov, b)
			want = append(want, b...)
		}
		off := int64(4096 * rng.IntN(64))
		if rng.IntN(4) == 0 {
			off += int64(rng.IntN(4096))
		}
		var got []byte
		next := off
		err := writePieces(iov, off, &scratch, func(v [][]byte, o int64) error {
			if o != next {
				t.Fatalf("piece at %d, want %d (the end of the one before)", o, next)
			}
			n := int64(0)
			for _, b := range v {
				got = append(got, b...)
				n += int64(len(b))
			}
			if n == 0 || o/smallFolio != (o+n-1)/smallFolio {
				t.Fatalf("piece [%d, %d) crosses a multiple of %d or is empty", o, o+n, smallFolio)
			}
			next = o + n
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("pieces put %d bytes, not the %d given, or not in order", len(got), len(want))
		}
	}
}
