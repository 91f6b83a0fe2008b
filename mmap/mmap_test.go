//go:build linux

package mmap

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestGrowBeneathMapping maps far beyond a small file, grows the file and
// writes through the writable mapping: the read-only mapping and pread see
// the bytes without a remap.
func TestGrowBeneathMapping(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "m"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Grow(f, 4096); err != nil {
		t.Fatal(err)
	}
	ro, err := Map(f, 1<<30, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Unmap()
	rw, err := Map(f, 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Unmap()
	if err := Grow(f, 64<<20); err != nil {
		t.Fatal(err)
	}
	rw.Data[60<<20] = 42
	if err := rw.Sync(60<<20, 1); err != nil {
		t.Fatal(err)
	}
	if ro.Data[60<<20] != 42 {
		t.Fatal("read-only mapping does not see the write")
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 60<<20); err != nil || b[0] != 42 {
		t.Fatalf("pread sees %v, %v", b, err)
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	a, _ := os.Create(path)
	defer a.Close()
	b, _ := os.Open(path)
	defer b.Close()
	if err := Lock(a, true, 0); err != nil {
		t.Fatal(err)
	}
	if err := Lock(b, false, 30*time.Millisecond); err != ErrLocked {
		t.Fatalf("second lock: %v", err)
	}
	Unlock(a)
	if err := Lock(b, false, 0); err != nil {
		t.Fatal(err)
	}
}
