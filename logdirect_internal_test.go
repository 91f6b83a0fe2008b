package mapkv

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// directLog creates a log file in a temporary directory and opens it for
// direct I/O, or skips the test where the file system takes none.
func directLog(t *testing.T) (*os.File, *logDirect) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	d := openLogDirect(path)
	if d == nil {
		t.Skipf("no direct I/O for %s on this platform or file system (the log is written through the page cache there, which the other tests cover)", path)
	}
	t.Cleanup(func() { d.f.Close() })
	return f, d
}

// TestLogDirectWrite appends records of every size (a few bytes to more
// than directChunk, ending anywhere in a block or on its edge), each in
// a few pieces, with revoked records and zeros ahead in between, and
// checks the file against a model of what walAppend, walRevoke and fill
// write: the bytes before each record are kept (the block holding its
// start is written again), the rest of the record's last block is zeros.
// Some records go through the page cache instead, as large ones do (see
// logCachedMin): those write only their own bytes, and the direct record
// after them must keep them (logDirect.wroteAround).
func TestLogDirectWrite(t *testing.T) {
	f, d := directLog(t)
	rng := rand.New(rand.NewPCG(3, 4))
	var model []byte
	put := func(off int64, b []byte) {
		if end := off + int64(len(b)); end > int64(len(model)) {
			model = append(model, make([]byte, end-int64(len(model)))...)
		}
		copy(model[off:], b)
	}
	h := bytes.Repeat([]byte{0xa5}, walHeaderSize)
	if _, err := f.WriteAt(h, 0); err != nil {
		t.Fatal(err)
	}
	put(0, h)
	d.restarted(h)
	off, recOff := int64(walHeaderSize), int64(-1)
	cached := 0
	for i := range 400 {
		switch r := rng.IntN(20); {
		case r == 0 && recOff >= 0:
			// walRevoke: the record's magic zeroed through the page
			// cache, the next record where it began.
			zero := make([]byte, 4)
			if _, err := f.WriteAt(zero, recOff); err != nil {
				t.Fatal(err)
			}
			put(recOff, zero)
			d.revoked()
			off, recOff = recOff, -1
			continue
		case r == 1:
			// fill: zeros ahead of the last record.
			end := off + rng.Int64N(3<<20)
			if err := d.zero(off, end); err != nil {
				t.Fatal(err)
			}
			if lo, hi := roundUp(off, d.align), roundUp(end, d.align); hi > lo {
				put(lo, make([]byte, hi-lo))
			}
			continue
		}
		var n int64
		switch rng.IntN(6) {
		case 0:
			n = 1 + rng.Int64N(100)
		case 1:
			n = roundUp(off+1, d.align) - off // ends on a block's edge
			n += d.align * rng.Int64N(3)
		case 2:
			n = directChunk + rng.Int64N(2*directChunk) // written in pieces
		default:
			n = 1 + rng.Int64N(20000)
		}
		rec := make([]byte, n)
		for j := range rec {
			rec[j] = byte(i + j*7 + 1)
		}
		var iov [][]byte
		for rest := rec; len(rest) > 0; {
			c := min(int64(len(rest)), 1+rng.Int64N(n))
			iov = append(iov, rest[:c])
			rest = rest[c:]
		}
		end := off + n
		if rng.IntN(5) == 0 {
			if err := pwritev(f, iov, off); err != nil {
				t.Fatal(err)
			}
			d.wroteAround(iov, off, n)
			cached++
		} else {
			if err := d.write(iov, off, n); err != nil {
				t.Fatalf("record %d (%d bytes at %d): %v", i, n, off, err)
			}
			put(end, make([]byte, roundUp(end, d.align)-end))
		}
		put(off, rec)
		recOff, off = off, end
	}
	if cached < 40 {
		t.Fatalf("%d records through the page cache, want 40 or more", cached)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(model) {
		t.Fatalf("log is %d bytes, want %d", len(got), len(model))
	}
	for i := range got {
		if got[i] != model[i] {
			t.Fatalf("log differs from the model first at byte %d: %#x, want %#x", i, got[i], model[i])
		}
	}
}

// TestLogDirectFallback: a direct write the file system refuses (EINVAL;
// here memory not aligned as direct I/O needs) makes the log go on
// through the page cache, with the record written whole.
func TestLogDirectFallback(t *testing.T) {
	f, d := directLog(t)
	h := bytes.Repeat([]byte{0x5a}, walHeaderSize)
	if _, err := f.WriteAt(h, 0); err != nil {
		t.Fatal(err)
	}
	d.restarted(h)
	raw := make([]byte, 4*d.align+1)
	d.buf = raw[1 : 1+4*d.align] // misaligned on purpose
	w := &wal{f: f, off: walHeaderSize, direct: d}
	rec := bytes.Repeat([]byte{7}, 3000)
	if err := w.write([][]byte{rec[:1000], rec[1000:]}, int64(len(rec))); err != nil {
		t.Fatal(err)
	}
	if w.direct != nil {
		d.f.Close()
		t.Skip("this file system took a direct write from unaligned memory: the fallback cannot be provoked here")
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if want := append(h, rec...); !bytes.Equal(got[:len(want)], want) {
		t.Fatalf("after the fallback the log holds %x..., want %x...", got[:80], want[:80])
	}
}
