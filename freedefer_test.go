package mapkv_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapkv/mapkv"
	"github.com/mapkv/mapkv/page"
)

// fileMeta decodes the newest meta of the data file at path as the page
// cache holds it.
func fileMeta(t *testing.T, path string) page.Meta {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	im := relLoadImage(t, b)
	return im.meta[im.newest]
}

// TestDeferredFreeList: commits small enough for the log leave the free
// list out of the file (page.MetaFreeDeferred); commits too large for it
// write it (every chunk); a crashed copy rebuilds it from the trees; Close
// writes it. Every step is checked against the model, and a free list
// that marked a live page free would have later commits overwrite it.
func TestDeferredFreeList(t *testing.T) {
	db, path, m := relFaultDB(t, logOpts())
	defer func() { db.Close() }()
	commit := func(ops []relOp, deferred bool) {
		t.Helper()
		if err := relCommit(db, m, ops); err != nil {
			t.Fatal(err)
		}
		fm := fileMeta(t, path)
		if got := fm.Flags&page.MetaFreeDeferred != 0; got != deferred {
			t.Fatalf("tx %d: free list deferred %v, want %v (flags %#x)", fm.TxID, got, deferred, fm.Flags)
		}
		if deferred && (fm.Freelist != 0 || fm.FreeTx != 0) {
			t.Fatalf("tx %d: deferred meta names free list page %d (tx %d)", fm.TxID, fm.Freelist, fm.FreeTx)
		}
		if !deferred && fm.Freelist == 0 {
			t.Fatalf("tx %d: a commit that writes the free list names none", fm.TxID)
		}
	}
	// 600 KB of values: more than a quarter of the 64 KiB log even grown
	// to its largest (2 MiB), so the commit writes the data file and its
	// free list.
	commit(relFill("big", 0, 600, 1000), false)
	for i := range 12 {
		commit(relFill("small", i*5, 5, 40), true)
		commit([]relOp{{kind: relDel, path: []string{"big"}, key: fmt.Sprintf("f%06d", i)}}, true)
	}
	if st := db.Stats(); !st.FreeListDeferred || st.FreePageN+st.PendingPageN == 0 {
		t.Fatalf("writer: FreeListDeferred %v, %d free and %d pending pages; want deferred and the writer's own count", st.FreeListDeferred, st.FreePageN, st.PendingPageN)
	}
	ro, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := ro.Stats(); !st.FreeListDeferred || st.FreePageN != 0 {
		t.Fatalf("reader beside the writer: FreeListDeferred %v, %d free pages; want deferred and not counted", st.FreeListDeferred, st.FreePageN)
	}
	relExpect(t, ro, m, "reader beside the writer")
	mustCheck(t, ro)
	ro.Close()
	// A crash now: the copy's newest meta defers its free list.
	cp := copyFiles(t, path)
	c := relReopen(t, cp, logOpts())
	relExpect(t, c, m, "crashed copy")
	mustCheck(t, c)
	if st := c.Stats(); st.FreeListLost != "" || st.FreePageN == 0 {
		t.Fatalf("crashed copy: %d free pages rebuilt, lost %q; want some, none lost", st.FreePageN, st.FreeListLost)
	}
	// Closed without a commit: the log (restarted at Open) does not hold
	// the last commit, so its meta cannot be rewritten safely, and Close
	// adds no commit of its own either: the file stays as it was.
	before := fileMeta(t, cp)
	c.Close()
	if fm := fileMeta(t, cp); fm != before {
		t.Fatalf("Close after recovery changed the meta: %+v, was %+v", fm, before)
	}
	c = relReopen(t, cp, logOpts())
	// Commits on the copy take pages from the rebuilt list.
	mc := m.clone()
	for i := range 10 {
		if err := relCommit(c, mc, relFill("after", i*7, 7, 60)); err != nil {
			t.Fatal(err)
		}
	}
	relExpect(t, c, mc, "commits after the rebuild")
	mustCheck(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if fm := fileMeta(t, cp); fm.Flags&page.MetaFreeDeferred != 0 || fm.Freelist == 0 {
		t.Fatalf("after Close: flags %#x, free list page %d; want the list written", fm.Flags, fm.Freelist)
	}
	// Reopened with the written list, Check also finds every page free
	// or reachable exactly once.
	c = relReopen(t, cp, logOpts())
	relExpect(t, c, mc, "reopened copy")
	mustCheck(t, c)
	c.Close()

	commit(relFill("big", 100, 600, 1000), false) // a large commit writes every chunk again
	commit(relFill("small", 100, 3, 40), true)
	last := fileMeta(t, path).TxID
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Close rewrote the last commit's meta with the list: same txid.
	if fm := fileMeta(t, path); fm.Flags&page.MetaFreeDeferred != 0 || fm.TxID != last {
		t.Fatalf("after Close: tx %d, flags %#x; want tx %d with the free list written", fm.TxID, fm.Flags, last)
	}
	db = relReopen(t, path, logOpts())
	relExpect(t, db, m, "reopened")
	mustCheck(t, db)
}

// TestDeferredFreeDamaged: when the trees of a meta that deferred its free
// list hold a damaged node, Open cannot tell which pages are free. It
// opens anyway (as it would with the list written), reuses no page, says
// why in Stats, and Check lists the damage; the rest stays readable and
// writable.
func TestDeferredFreeDamaged(t *testing.T) {
	db, path, m := relFaultDB(t, logOpts())
	if err := relCommit(db, m, relFill("other", 0, 200, 30)); err != nil {
		t.Fatal(err)
	}
	if err := relCommit(db, m, relFill("base", 100, 1, 30)); err != nil {
		t.Fatal(err)
	}
	// The data file as the page cache holds it is whole without the log.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	im := relLoadImage(t, b)
	if im.meta[im.newest].Flags&page.MetaFreeDeferred == 0 {
		t.Fatal("the newest commit did not defer its free list")
	}
	victim := im.find(t, func(n relNodeInfo) bool {
		return n.typ == page.TypeLeaf && n.bucket == "/other" && n.birth < im.meta[im.newest].TxID
	})
	im.node(victim.id)[page.HeaderSize+3] ^= 0x10
	cp := filepath.Join(t.TempDir(), "damaged.db")
	if err := os.WriteFile(cp, im.b, 0o600); err != nil {
		t.Fatal(err)
	}
	c := relReopen(t, cp, logOpts())
	defer c.Close()
	st := c.Stats()
	if st.FreeListLost == "" || st.FreePageN != 0 {
		t.Fatalf("Open over a damaged tree: FreeListLost %q, %d free pages; want a reason and none", st.FreeListLost, st.FreePageN)
	}
	t.Logf("Stats.FreeListLost: %s", st.FreeListLost)
	if err := c.Check(); !errors.Is(err, mapkv.ErrCorrupt) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("Check: %v, want the damaged leaf", err)
	}
	if err := c.View(func(tx *mapkv.Tx) error {
		if got, want := string(tx.Bucket([]byte("base")).Get([]byte("f000100"))), m.sub["base"].kv["f000100"]; got != want || want == "" {
			return fmt.Errorf("base/f000100 = %q", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("new"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatalf("a write after Open over a damaged tree: %v", err)
	}
}

// TestDeferredFreeListChunks: the free list is written in chunks (7,872
// pages each at 1 KiB pages), and a commit rewrites only the chunks whose
// bits changed. After a commit that deferred the list, the next one that
// writes it must write every chunk: here chunk 1 holds free pages while
// the small commits only touch chunk 0 (leaves, and the free pages they
// take) and chunk 2 (the branches, written last), and a chunk left out of
// the index would lose its free pages for good (Check: neither reachable
// nor free).
func TestDeferredFreeListChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chunks.db")
	db, err := mapkv.Open(path, logOpts())
	if err != nil {
		t.Fatal(err)
	}
	m := newRelBucket()
	// About 20,000 leaves in key order, then the branches: three chunks.
	if err := relCommit(db, m, relFill("data", 0, 40000, 400)); err != nil {
		t.Fatal(err)
	}
	if pc := db.Stats().PageCount; pc < 2*7872+500 {
		t.Fatalf("the file has %d pages; the test needs three chunks", pc)
	}
	// Free pages in both chunks, in a commit too large for the log (it
	// writes the list).
	ops := append(relFill("pad", 0, 600, 1000),
		relOp{kind: relBulkDel, path: []string{"data"}, key: "f001000", hi: "f001400"},
		relOp{kind: relBulkDel, path: []string{"data"}, key: "f022000", hi: "f023000"})
	if err := relCommit(db, m, ops); err != nil {
		t.Fatal(err)
	}
	if fm := fileMeta(t, path); fm.Flags&page.MetaFreeDeferred != 0 {
		t.Fatal("the large commit deferred its free list")
	}
	// Small commits in the low keys: they free and take pages of chunk 0.
	for i := range 5 {
		if err := relCommit(db, m, relFill("data", 10+i, 1, 400)); err != nil {
			t.Fatal(err)
		}
	}
	if fm := fileMeta(t, path); fm.Flags&page.MetaFreeDeferred == 0 {
		t.Fatal("the small commits wrote their free lists")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = relReopen(t, path, logOpts())
	defer db.Close()
	relExpect(t, db, m, "reopened")
	mustCheck(t, db)
}
