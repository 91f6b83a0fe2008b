package mapkv_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/mapkv/mapkv"
	"github.com/mapkv/mapkv/page"
)

// logFixture is a crashed copy (data file and log) of a database whose
// log holds nodes both whole and as puts, made once per test binary.
var logFixture struct {
	once      sync.Once
	data, log []byte
	err       error
}

func logFixtureFiles(tb testing.TB) (data, lg []byte) {
	tb.Helper()
	logFixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "mapkv-logfuzz")
		if err != nil {
			logFixture.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "f.db")
		db, err := mapkv.Open(path, logOpts())
		if err != nil {
			logFixture.err = err
			return
		}
		defer db.Close()
		m := newRelBucket()
		err = relCommit(db, m, relFill("a", 0, 300, 20))
		for j := 0; err == nil && j < 12; j++ {
			err = relCommit(db, m, scatteredPuts(j))
		}
		if err == nil && mapkv.WalPutsForTest(db) == 0 {
			err = errors.New("the fixture's log holds no puts")
		}
		if err == nil {
			logFixture.data, err = os.ReadFile(path)
		}
		if err == nil {
			logFixture.log, err = os.ReadFile(path + "-wal")
		}
		logFixture.err = err
	})
	if logFixture.err != nil {
		tb.Fatal(logFixture.err)
	}
	return logFixture.data, logFixture.log
}

// writeCrashed writes a data file and its log (a crashed copy's) under
// a new path, and returns it.
func writeCrashed(t *testing.T, data, lg []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crashed.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-wal", lg, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// resealLog fixes, in log image lg, every checksum a change may have
// broken, in place: each record's meta, node images (the listed checksum
// too), puts payloads and header. A record whose lengths no longer hold
// together ends the walk.
func resealLog(lg []byte) {
	le := binary.LittleEndian
	if len(lg) < 64 {
		return
	}
	ps := int(le.Uint32(lg[8:]))
	if ps < page.MinPageSize || ps > 1<<16 {
		return
	}
	for off := 64; off+160 <= len(lg) && le.Uint32(lg[off:]) == 0x4345524d; {
		n := int(le.Uint32(lg[off+4:]))
		hl := 160 + 24*n + 8
		total := le.Uint64(lg[off+24:])
		if n > len(lg) || off+hl > len(lg) || total < uint64(hl) || total > uint64(len(lg)-off) {
			return
		}
		page.Seal(lg[off+32 : off+160])
		data := off + hl
		for i := range n {
			e := off + 160 + 24*i
			pages, stored := le.Uint32(lg[e+8:]), int(le.Uint32(lg[e+12:]))
			if stored < 0 || data+stored > off+int(total) {
				return
			}
			b := lg[data : data+stored]
			switch {
			case pages&(1<<31) != 0 && stored >= 8:
				le.PutUint64(b[stored-8:], xxhash.Sum64(b[:stored-8]))
			case pages&(1<<31) == 0 && pages > 0 && pages < 64 && stored >= page.HeaderSize && stored <= int(pages)*ps:
				node := make([]byte, int(pages)*ps)
				copy(node, b)
				le.PutUint64(lg[e+16:], page.Seal(node))
				copy(b, node[:stored])
			}
			data += stored
		}
		le.PutUint64(lg[off+hl-8:], xxhash.Sum64(lg[off:off+hl-8]))
		off += int(total)
	}
}

// FuzzLogReplay opens a crashed copy whose log the input changes: each
// four bytes of it name a byte of the log (three bytes, modulo its size)
// and what to XOR into it; if the input's first byte is odd, every
// checksum is fixed after (resealLog), so that the replay meets records
// that verify but say anything. Open must fail with ErrCorrupt or
// succeed, and then everything must run over the database without a
// panic, as in FuzzOpen.
func FuzzLogReplay(f *testing.F) {
	data, lg := logFixtureFiles(f)
	f.Add([]byte{})
	f.Add([]byte{1})
	// A byte of each record's header, node list and first node, sealed
	// and not.
	logRecords(lg, func(off, n int, _ uint64) {
		for _, at := range []int{off + 4, off + 160 + 8, off + 160 + 12, off + 160 + 24*n + 8 + 1, off + 160 + 24*n + 8 + 20} {
			for _, seal := range []byte{0, 1} {
				f.Add([]byte{seal, byte(at >> 16), byte(at >> 8), byte(at), 0x41})
			}
		}
		// The first node claims 2^30 more pages, checksums fixed: the
		// replay allocated the claimed terabyte to verify it, and the
		// process died out of memory.
		at := off + 160 + 8 + 3
		f.Add([]byte{1, byte(at >> 16), byte(at >> 8), byte(at), 0x40})
	})
	f.Fuzz(func(t *testing.T, patch []byte) {
		l := slices.Clone(lg)
		for i := 1; i+4 <= len(patch); i += 4 {
			at := (int(patch[i])<<16 | int(patch[i+1])<<8 | int(patch[i+2])) % len(l)
			l[at] ^= patch[i+3]
		}
		if len(patch) > 0 && patch[0]&1 != 0 {
			resealLog(l)
		}
		path := writeCrashed(t, data, l)
		relFuzzCatch(t, "FuzzLogReplay", func() {
			db, err := mapkv.Open(path, logOpts())
			if err != nil {
				if !errors.Is(err, mapkv.ErrCorrupt) {
					t.Fatalf("Open: %v does not wrap ErrCorrupt", err)
				}
				return
			}
			defer db.Close()
			if err := db.Check(); err != nil && !errors.Is(err, mapkv.ErrCorrupt) {
				t.Fatalf("Check: %v does not wrap ErrCorrupt", err)
			}
			relAbuse(t, db)
		})
	})
}

// TestLogPageCountBound: a record whose meta names far more pages than
// its nodes and the file before it use (checksums forged) is refused
// with ErrCorrupt before the replay writes anything; stretched by the
// replay, the file took a terabyte of address space to map.
func TestLogPageCountBound(t *testing.T) {
	data, lg := logFixtureFiles(t)
	l := slices.Clone(lg)
	last := -1
	logRecords(l, func(off, _ int, _ uint64) { last = off })
	if last < 0 {
		t.Fatal("the fixture's log holds no record")
	}
	pc := l[last+32+96:] // the meta's page count
	binary.LittleEndian.PutUint64(pc, binary.LittleEndian.Uint64(pc)+1<<28)
	resealLog(l)
	path := writeCrashed(t, data, l)
	_, err := mapkv.Open(path, logOpts())
	if !errors.Is(err, mapkv.ErrCorrupt) || !strings.Contains(err.Error(), "names") {
		t.Fatalf("Open: %v, want ErrCorrupt naming the page count", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Fatal("Open changed the data file")
	}
}
