package mmap

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestResidencyNext drops a three-chunk file from the page cache, reads
// back two pages of it (one in the first chunk, one in the last), and
// asks Next from every part of the file: it must name exactly those
// pages (a byte inside one names it), skip the uncached middle chunk,
// and end after the last.
func TestResidencyNext(t *testing.T) {
	ps := int64(os.Getpagesize())
	size := int64(3 * residentChunk)
	f, err := os.Create(filepath.Join(t.TempDir(), "r"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, size), 0); err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	// No read-ahead around the two pages read back.
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	a, b := 5*ps, size-3*ps
	for _, off := range []int64{a, b} {
		if _, err := f.ReadAt(make([]byte, ps), off); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Map(f, size, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Unmap()
	res, err := r.Resident(f, size)
	if err != nil {
		t.Fatal(err)
	}
	cached := 0
	for off := int64(0); off < size; off += ps {
		if res.Has(off) {
			cached++
		}
	}
	if cached != 2 || !res.Has(a) || !res.Has(b) {
		t.Skipf("%d pages cached after dropping the file and reading 2 back: the page cache cannot be steered here", cached)
	}
	for _, c := range []struct {
		from, want int64
		ok         bool
	}{
		{-ps, a, true}, {0, a, true}, {a - 1, a, true}, {a, a, true},
		{a + ps - 1, a, true}, {a + ps, b, true}, {residentChunk, b, true},
		{b, b, true}, {b + 1, b, true}, {b + ps, 0, false}, {size, 0, false},
	} {
		got, ok := res.Next(c.from)
		if got != c.want || ok != c.ok {
			t.Errorf("Next(%d) = %d, %v; want %d, %v", c.from, got, ok, c.want, c.ok)
		}
	}
}
