package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapkv/mapkv"
)

func TestCompact(t *testing.T) {
	src := fixtureFile(t)
	dst := filepath.Join(t.TempDir(), "compact.db")
	out := mustRun(t, "compact", src, dst)
	if left := leftovers(t, filepath.Dir(dst), "compact.db"); left != nil {
		t.Errorf("compact left %q behind", left)
	}
	if !strings.Contains(out, "39 keys in 6 buckets") || !strings.Contains(out, "of the original size") {
		t.Errorf("compact says:\n%s", out)
	}
	if mustRun(t, "dump", dst) != mustRun(t, "dump", src) {
		t.Error("the compacted copy holds other data (sequences included)")
	}
	mustRun(t, "check", dst)
	var info infoReport
	mustJSON(t, mustRun(t, "info", "--json", dst), &info)
	if info.FreePages != 0 || info.TailPages != 0 {
		t.Errorf("compacted copy has %d free pages and %d pages of tail", info.FreePages, info.TailPages)
	}
	// The copy is an ordinary database: it takes writes.
	mustRun(t, "put", dst, "users", "new", "v")
	mustRun(t, "check", dst)

	wantCode(t, run(t, "", "compact", src, dst), exitError, "exists (use --force")
	mustRun(t, "compact", "--force", src, dst)
	wantCode(t, run(t, "", "compact", src, src), exitError, "same file")
	wantCode(t, run(t, "", "compact", src+".missing", dst+"2"), exitError, "no such file")
}

// TestCompactShrinks compacts a database that lost most of its keys, over
// many transactions (a small --tx-max-size).
func TestCompactShrinks(t *testing.T) {
	src := newDB(t, func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := 0; i < 20000; i++ {
			if err := b.Put([]byte(fmt.Sprintf("key%06d", i)), []byte(strings.Repeat("v", 200))); err != nil {
				return err
			}
		}
		return nil
	}, func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("b"))
		for i := 0; i < 20000; i++ {
			if i%10 != 0 {
				if err := b.Delete([]byte(fmt.Sprintf("key%06d", i))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	dst := filepath.Join(t.TempDir(), "compact.db")
	out := mustRun(t, "compact", "--tx-max-size", "100000", src, dst)
	if !strings.Contains(out, "2000 keys in 1 bucket, 5 transactions") {
		t.Errorf("compact says:\n%s", out)
	}
	si, _ := os.Stat(src)
	di, _ := os.Stat(dst)
	if di.Size()*5 > si.Size() {
		t.Errorf("compacted %d bytes into %d", si.Size(), di.Size())
	}
	if mustRun(t, "dump", dst) != mustRun(t, "dump", src) {
		t.Error("the compacted copy holds other data")
	}
	mustRun(t, "check", dst)
}

// TestCompactInterrupted cancels a compact between two transactions: no
// destination, no temporary file.
func TestCompactInterrupted(t *testing.T) {
	src := fixtureFile(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := runCtx(t, ctx, strings.NewReader(""), "compact", "--tx-max-size", "10", src, filepath.Join(dir, "out.db"))
	wantCode(t, r, exitInterrupted, "compact interrupted", "out.db was not written")
	if left := leftovers(t, dir); left != nil {
		t.Errorf("an interrupted compact left %q behind", left)
	}
}
