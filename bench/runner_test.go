package bench

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWarmFile: warm reads a file's data and skips its holes: a 16 MiB
// file with 4 KiB of data at its start and at 8 MiB reads 8 KiB (or, on a
// file system without SEEK_DATA, all of it), and a dense file reads whole.
func TestWarmFile(t *testing.T) {
	dir := t.TempDir()
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	for i := range page {
		page[i] = 1
	}
	for _, off := range []int64{0, 8 << 20} {
		if _, err := f.WriteAt(page, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(16 << 20); err != nil {
		t.Fatal(err)
	}
	// Does the file system say where the data is?
	want := int64(8192)
	if off, err := f.Seek(4096, seekData); err != nil || off != 8<<20 {
		t.Logf("no SEEK_DATA on %s (%d, %v): warm reads it all", dir, off, err)
		want = 16 << 20
	}
	f.Close()
	buf := make([]byte, 1<<20)
	n, err := warmFile(sparse, buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("warmFile read %d bytes of a file with 8 KiB of data in 16 MiB, want %d", n, want)
	}

	dense := filepath.Join(dir, "dense")
	if err := os.WriteFile(dense, make([]byte, 3<<20+17), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := warmFile(dense, buf); err != nil || n != 3<<20+17 {
		t.Fatalf("warmFile of a dense file: %d bytes, %v; want %d", n, err, 3<<20+17)
	}
	if err := warm(dir); err != nil {
		t.Fatal(err)
	}
}
