package mapkv_test

// Damaged files. A small database is built, then damaged case by case with
// the page package: each meta slot broken, torn pages, bad checksums, a
// branch pointing outside the file, loops, shared subtrees, a free page
// that is also reachable, truncation, zeros, files that are not mapkv at
// all. Where a case needs bad structure behind a good checksum, the node
// is re-sealed, and the newest meta is marked as flushed before it was
// written (so Open trusts it without walking its commit record, as it
// would a two-sync commit).
//
// For every case: Open returns an error wrapping ErrCorrupt, or falls back
// to the older meta (Stats.MetaFallback says so) and finds the older state
// intact, or opens the newest state and Check lists the problem. Then
// every reader, Check, Stats, WriteTo and a write transaction run over the
// file: none may panic.
//
// MAPKV_UPDATE_CORPUS=1 writes the damaged files, gzipped, to
// testdata/corrupt; TestCorruptCorpus opens every file there.

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/mapkv/mapkv"
	"github.com/mapkv/mapkv/page"
)

// relImage is a database file in memory, to be damaged.
type relImage struct {
	b      []byte
	ps     int
	newest int // slot of the newest meta
	meta   [2]page.Meta
}

func relLoadImage(t testing.TB, b []byte) *relImage {
	im := &relImage{b: b}
	var err [2]error
	im.meta[0], err[0] = page.DecodeMeta(b, 0)
	im.ps = int(im.meta[0].PageSize)
	if err[0] != nil || im.ps == 0 {
		t.Fatalf("base image: meta 0: %v", err[0])
	}
	im.meta[1], err[1] = page.DecodeMeta(b[im.ps:], 1)
	if err[1] != nil {
		t.Fatalf("base image: meta 1: %v", err[1])
	}
	if im.meta[1].TxID > im.meta[0].TxID {
		im.newest = 1
	}
	return im
}

func (im *relImage) clone() *relImage {
	c := *im
	c.b = append([]byte(nil), im.b...)
	return &c
}

func (im *relImage) pageBytes(id page.ID) []byte {
	return im.b[int(id)*im.ps : (int(id)+1)*im.ps]
}

// node returns the run of pages of the node at id.
func (im *relImage) node(id page.ID) []byte {
	n := 1 + int(page.Overflow(im.pageBytes(id)))
	return im.b[int(id)*im.ps : (int(id)+n)*im.ps]
}

func (im *relImage) seal(id page.ID) { page.Seal(im.node(id)) }

// setMeta rewrites meta slot with m (sealed).
func (im *relImage) setMeta(slot int, m page.Meta) {
	page.PutMeta(im.pageBytes(page.ID(slot)), page.ID(slot), &m)
	im.meta[slot] = m
}

// trust marks the newest meta as written after its data was flushed, so
// Open uses it without verifying its commit record.
func (im *relImage) trust() {
	m := im.meta[im.newest]
	m.Flags |= page.MetaSynced
	im.setMeta(im.newest, m)
}

// relNodeInfo describes a node reachable from the newest meta.
type relNodeInfo struct {
	id     page.ID
	typ    page.Type
	birth  page.TxID
	parent page.ID // 0 for a bucket's root
	bucket string
	depth  int // in its bucket's tree
}

// walk lists the nodes reachable from the newest meta (overflow nodes
// included), parents before children.
func (im *relImage) walk() []relNodeInfo {
	var out []relNodeInfo
	seen := map[page.ID]bool{}
	var visit func(id page.ID, parent page.ID, bucket string, depth int)
	visit = func(id page.ID, parent page.ID, bucket string, depth int) {
		if seen[id] {
			return // a damaged image may share nodes
		}
		seen[id] = true
		n := im.node(id)
		typ := page.NodeType(n)
		out = append(out, relNodeInfo{id, typ, page.Birth(n), parent, bucket, depth})
		for i := 0; i < page.Count(n); i++ {
			if typ == page.TypeBranch {
				c, _ := page.BranchChild(n, i)
				visit(c, id, bucket, depth+1)
				continue
			}
			f, k, v, _ := page.LeafElem(n, i)
			r, _ := page.DecodeRef(v)
			switch {
			case f&page.FlagBucket != 0 && r.Root != 0:
				visit(r.Root, 0, bucket+"/"+string(k), 0)
			case f&page.FlagOverflow != 0:
				out = append(out, relNodeInfo{r.Root, page.TypeOverflow, r.Birth, id, bucket, depth + 1})
			}
		}
	}
	if r := im.meta[im.newest].Root; r.Root != 0 {
		visit(r.Root, 0, "", 0)
	}
	return out
}

// find returns the first node matching pred, failing the test if none.
func (im *relImage) find(t testing.TB, pred func(relNodeInfo) bool) relNodeInfo {
	for _, n := range im.walk() {
		if pred(n) {
			return n
		}
	}
	t.Fatal("base image has no node of the kind a case needs")
	return relNodeInfo{}
}

type relLeafElem struct {
	flags      uint16
	key, value []byte
}

func (im *relImage) leafElems(id page.ID) []relLeafElem {
	n := im.node(id)
	var es []relLeafElem
	for i := 0; i < page.Count(n); i++ {
		f, k, v, _ := page.LeafElem(n, i)
		es = append(es, relLeafElem{f, append([]byte(nil), k...), append([]byte(nil), v...)})
	}
	return es
}

// writeLeaf rewrites the leaf at id with es (same id, birth and size) and
// seals it.
func (im *relImage) writeLeaf(id page.ID, es []relLeafElem) {
	n := im.node(id)
	birth, ov := page.Birth(n), page.Overflow(n)
	clear(n)
	page.PutHeader(n, id, birth, page.TypeLeaf, ov, len(es))
	w := page.NewLeafWriter(n, len(es))
	for _, e := range es {
		w.Add(e.flags, e.key, e.value)
	}
	page.Seal(n)
}

type relBranchElem struct {
	key   []byte
	child page.ID
	birth page.TxID
}

func (im *relImage) branchElems(id page.ID) []relBranchElem {
	n := im.node(id)
	var es []relBranchElem
	for i := 0; i < page.Count(n); i++ {
		k, _ := page.BranchKey(n, i)
		c, b := page.BranchChild(n, i)
		es = append(es, relBranchElem{append([]byte(nil), k...), c, b})
	}
	return es
}

func (im *relImage) writeBranch(id page.ID, es []relBranchElem) {
	n := im.node(id)
	birth, ov := page.Birth(n), page.Overflow(n)
	clear(n)
	page.PutHeader(n, id, birth, page.TypeBranch, ov, len(es))
	w := page.NewBranchWriter(n, len(es))
	for _, e := range es {
		w.Add(e.key, e.child, e.birth)
	}
	page.Seal(n)
}

// freeChunks returns the newest meta's free-list index: the node of each
// chunk of the bitmap (0: no page of the chunk is free).
func (im *relImage) freeChunks(t testing.TB) []page.FreeChunk {
	m := im.meta[im.newest]
	chunks, err := page.DecodeFreeIndex(im.node(m.Freelist), m.PgCount, im.ps)
	if err != nil {
		t.Fatalf("base image free list: %v", err)
	}
	return chunks
}

// freeBitmap returns the bitmap of the chunk holding page id, and the
// chunk node's id (0 if the chunk has no node: nothing in it is free).
func (im *relImage) freeBitmap(t testing.TB, id page.ID) ([]byte, page.ID, page.ID) {
	bits := page.ChunkBits(im.ps)
	c := uint64(id) / bits
	chunks := im.freeChunks(t)
	if c >= uint64(len(chunks)) || chunks[c].ID == 0 {
		return nil, 0, 0
	}
	bm, err := page.FreeChunkBitmap(im.node(chunks[c].ID), c, im.ps)
	if err != nil {
		t.Fatalf("base image free chunk: %v", err)
	}
	return bm, chunks[c].ID, page.ID(c * bits)
}

// freeRuns returns the free pages of the newest meta.
func (im *relImage) freeRuns(t testing.TB) []page.Run {
	var runs []page.Run
	bits := page.ChunkBits(im.ps)
	for c, fc := range im.freeChunks(t) {
		if fc.ID == 0 {
			continue
		}
		bm, err := page.FreeChunkBitmap(im.node(fc.ID), uint64(c), im.ps)
		if err != nil {
			t.Fatal(err)
		}
		page.BitmapRuns(bm, page.ID(uint64(c)*bits), ^uint64(0), func(r page.Run) { runs = append(runs, r) })
	}
	return runs
}

// setFree marks page id free (or not) in its chunk's bitmap and reseals
// the chunk node. The chunk must have a node.
func (im *relImage) setFree(t testing.TB, id page.ID, free bool) {
	bm, node, base := im.freeBitmap(t, id)
	if bm == nil {
		t.Fatalf("page %d lies in a chunk with no node", id)
	}
	i := uint64(id - base)
	if free {
		bm[i/8] |= 1 << (i % 8)
	} else {
		bm[i/8] &^= 1 << (i % 8)
	}
	im.seal(node)
}

// relTear overwrites a sector with stale bytes, as a write that never
// reached the disk leaves it.
func relTear(b []byte) {
	for i := range b {
		b[i] = 0x5a ^ byte(i)
	}
}

// ---------------------------------------------------------------------

// relCorruptBase builds the database the cases damage, and the models of
// its last two commits.
func relCorruptBase(t testing.TB) (img []byte, newest, older *relBucket) {
	path := filepath.Join(t.TempDir(), "base.db")
	// No shrink: the older meta must still fit the file (see
	// TestCorruptMetaAfterShrink). No log: with it, the commits defer
	// their free lists and Close adds one that writes it, so the last
	// two metas would not be the last two steps (TestDeferredFreeDamaged
	// damages a file whose last commit deferred its free list).
	opts := &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 4096, ShrinkThreshold: 64 << 20, WALSize: -1}
	db, err := mapkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	m := newRelBucket()
	steps := [][]relOp{
		relFill("alpha", 0, 1500, 8), // a tree of three levels
		{
			{kind: relPut, path: []string{"beta", "inner"}, key: "k1", val: "v1"},
			{kind: relPut, path: []string{"beta", "inner"}, key: "k2", val: "v2"},
			{kind: relPut, path: []string{"beta"}, key: "plain", val: "value"},
			{kind: relSeq, path: []string{"beta"}},
			{kind: relPut, path: []string{"gamma"}, key: "big1", val: strings.Repeat("B", 3000)},
			{kind: relPut, path: []string{"gamma"}, key: "big2", val: strings.Repeat("C", 900)},
			{kind: relCreate, path: []string{"empty"}},
		},
		relFill("alpha", 1500, 40, 8),
		{{kind: relBulkDel, path: []string{"alpha"}, key: "f000100", hi: "f000130"}}, // free pages
		{{kind: relPut, path: []string{"delta"}, key: "d", val: "older"}},
		{{kind: relPut, path: []string{"delta"}, key: "d", val: "newest"}},
	}
	for i, ops := range steps {
		if i == len(steps)-1 {
			older = m.clone()
		}
		if err := relCommit(db, m, ops); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Check(); err != nil {
		t.Fatalf("base: %v", err)
	}
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, m, older
}

// Outcomes a case allows.
const (
	relOpenCorrupt = 1 << iota // Open fails with ErrCorrupt
	relFallback                // Open uses the older meta; the older state, intact
	relNewest                  // Open uses the newest meta; Check clean, newest state
	relCheckFails              // Open uses the newest meta; Check lists the problem
	relFresh                   // Open makes a new empty database (an empty file)
)

type relCorruptCase struct {
	name   string
	damage func(t testing.TB, im *relImage) []byte // returns the file's bytes
	allow  int
	want   string // a substring Check's or Open's message must hold, if set
}

func relCorruptCases() []relCorruptCase {
	flip := func(b []byte, off int) { b[off] ^= 0x10 }
	isNewest := func(im *relImage) func(relNodeInfo) bool {
		return func(n relNodeInfo) bool { return n.birth == im.meta[im.newest].TxID }
	}
	isOld := func(im *relImage, typ page.Type) func(relNodeInfo) bool {
		return func(n relNodeInfo) bool { return n.typ == typ && n.birth < im.meta[im.newest].TxID }
	}
	return []relCorruptCase{
		{"meta-newest-bad-checksum", func(t testing.TB, im *relImage) []byte {
			flip(im.b, im.newest*im.ps+50)
			return im.b
		}, relFallback, ""},
		{"meta-older-bad-checksum", func(t testing.TB, im *relImage) []byte {
			flip(im.b, (1-im.newest)*im.ps+50)
			return im.b
		}, relNewest | relFallback, ""},
		{"meta-both-bad-checksum", func(t testing.TB, im *relImage) []byte {
			flip(im.b, 50)
			flip(im.b, im.ps+50)
			return im.b
		}, relOpenCorrupt, ""},
		{"meta-newest-zeroed", func(t testing.TB, im *relImage) []byte {
			clear(im.pageBytes(page.ID(im.newest)))
			return im.b
		}, relFallback, ""},
		{"meta-slot0-zeroed", func(t testing.TB, im *relImage) []byte {
			clear(im.pageBytes(0)) // the page size must be found from slot 1
			return im.b
		}, relFallback | relNewest, ""},
		{"meta-both-zeroed", func(t testing.TB, im *relImage) []byte {
			clear(im.b[:2*im.ps])
			return im.b
		}, relOpenCorrupt, ""},
		{"meta-newest-torn-sector", func(t testing.TB, im *relImage) []byte {
			// the first 512 bytes of the newest meta from the older one
			off := im.newest * im.ps
			copy(im.b[off+64:off+512], im.b[(1-im.newest)*im.ps+64:])
			return im.b
		}, relFallback, ""},
		{"meta-newest-root-outside", func(t testing.TB, im *relImage) []byte {
			m := im.meta[im.newest]
			m.Root.Root = page.ID(m.PgCount + 10)
			im.setMeta(im.newest, m)
			return im.b
		}, relFallback, ""},
		{"meta-newest-pgcount-beyond-file", func(t testing.TB, im *relImage) []byte {
			m := im.meta[im.newest]
			m.PgCount = uint64(len(im.b)/im.ps) + 100
			im.setMeta(im.newest, m)
			return im.b
		}, relFallback, ""},
		{"meta-newest-bad-page-size", func(t testing.TB, im *relImage) []byte {
			m := im.meta[im.newest]
			m.PageSize = 1000
			im.setMeta(im.newest, m)
			return im.b
		}, relFallback, ""},
		{"meta-older-other-page-size", func(t testing.TB, im *relImage) []byte {
			m := im.meta[1-im.newest]
			m.PageSize = 2048
			im.setMeta(1-im.newest, m)
			return im.b
		}, relNewest | relOpenCorrupt, ""},
		{"meta-newest-wrong-commit-record", func(t testing.TB, im *relImage) []byte {
			m := im.meta[im.newest]
			m.CommitHash++
			im.setMeta(im.newest, m)
			return im.b
		}, relFallback, ""},
		{"meta-newest-future-txid", func(t testing.TB, im *relImage) []byte {
			m := im.meta[im.newest]
			m.TxID += 1000
			im.setMeta(im.newest, m)
			return im.b
		}, relFallback, ""},
		{"torn-page-of-newest-commit", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isNewest(im))
			relTear(im.node(n.id)[512:1024]) // the second sector never reached the disk
			return im.b
		}, relFallback, ""},
		{"bad-checksum-in-newest-commit", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isNewest(im))
			flip(im.node(n.id), 40)
			return im.b
		}, relFallback, ""},
		{"torn-old-leaf", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeLeaf))
			relTear(im.node(n.id)[512:1024])
			return im.b
		}, relCheckFails, "checksum"},
		{"bad-checksum-old-leaf", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeLeaf))
			flip(im.node(n.id), len(im.node(n.id))-600)
			return im.b
		}, relCheckFails, "checksum"},
		{"bad-checksum-old-branch", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeBranch))
			flip(im.node(n.id), page.HeaderSize+1)
			return im.b
		}, relCheckFails, "checksum"},
		{"bad-checksum-overflow", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeOverflow))
			flip(im.node(n.id), 2000)
			return im.b
		}, relCheckFails, "checksum"},
		{"old-leaf-zeroed", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeLeaf))
			clear(im.node(n.id))
			return im.b
		}, relCheckFails, ""},
		{"misdirected-write", func(t testing.TB, im *relImage) []byte {
			// a valid node of another page written over an old leaf
			a := im.find(t, isOld(im, page.TypeLeaf))
			b := im.find(t, func(n relNodeInfo) bool {
				return n.typ == page.TypeLeaf && n.id != a.id && n.birth < im.meta[im.newest].TxID
			})
			copy(im.node(a.id), im.node(b.id))
			return im.b
		}, relCheckFails, "header says page"},
		{"branch-child-outside-file", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeBranch))
			es := im.branchElems(n.id)
			es[len(es)-1].child = page.ID(len(im.b)/im.ps + 1000)
			im.writeBranch(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, "outside the file"},
		{"branch-child-is-meta", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeBranch))
			es := im.branchElems(n.id)
			es[0].child = 1
			im.writeBranch(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"branch-loop-to-root", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, func(n relNodeInfo) bool { return n.typ == page.TypeBranch && n.depth == 1 })
			root := im.find(t, func(r relNodeInfo) bool { return r.bucket == n.bucket && r.depth == 0 })
			es := im.branchElems(n.id)
			es[len(es)-1].child, es[len(es)-1].birth = root.id, root.birth
			im.writeBranch(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"branch-self-loop", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeBranch))
			es := im.branchElems(n.id)
			es[0].child, es[0].birth = n.id, n.birth
			im.writeBranch(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"shared-subtree", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, func(n relNodeInfo) bool {
				return n.typ == page.TypeBranch && len(im.branchElems(n.id)) > 2
			})
			es := im.branchElems(n.id)
			es[1].child, es[1].birth = es[0].child, es[0].birth
			im.writeBranch(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, "twice"},
		{"child-birth-mismatch", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeBranch))
			es := im.branchElems(n.id)
			if es[0].birth > 1 {
				es[0].birth--
			} else {
				es[0].birth++
			}
			im.writeBranch(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"child-birth-zero", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeBranch))
			es := im.branchElems(n.id)
			es[0].birth = 0
			im.writeBranch(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"branch-keys-out-of-order", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, func(n relNodeInfo) bool {
				return n.typ == page.TypeBranch && len(im.branchElems(n.id)) > 2
			})
			es := im.branchElems(n.id)
			es[1].key, es[2].key = es[2].key, es[1].key
			im.writeBranch(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, "order"},
		{"leaf-keys-out-of-order", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, func(n relNodeInfo) bool { return n.typ == page.TypeLeaf && len(im.leafElems(n.id)) > 3 })
			es := im.leafElems(n.id)
			es[1], es[2] = es[2], es[1]
			im.writeLeaf(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, "order"},
		{"leaf-elements-garbled", func(t testing.TB, im *relImage) []byte {
			// everything between the header and the first key: the element
			// array (wherever the format puts it) points outside the node
			n := im.find(t, func(n relNodeInfo) bool { return n.typ == page.TypeLeaf && len(im.leafElems(n.id)) > 3 })
			node := im.node(n.id)
			first := len(node)
			for i := 0; i < page.Count(node); i++ {
				if k, ok := page.LeafKey(node, i); ok && len(k) > 0 {
					first = min(first, int(uintptr(unsafe.Pointer(unsafe.SliceData(k)))-uintptr(unsafe.Pointer(unsafe.SliceData(node)))))
				}
			}
			for i := page.HeaderSize; i < first; i++ {
				node[i] = 0xff
			}
			page.Seal(node)
			im.trust()
			return im.b
		}, relCheckFails, "does not fit"},
		{"leaf-count-beyond-node", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeLeaf))
			node := im.node(n.id)
			page.PutHeader(node, n.id, n.birth, page.TypeLeaf, page.Overflow(node), page.MaxCount)
			page.Seal(node)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"leaf-count-zero", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeLeaf))
			node := im.node(n.id)
			page.PutHeader(node, n.id, n.birth, page.TypeLeaf, page.Overflow(node), 0)
			page.Seal(node)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"leaf-bad-flags", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeLeaf))
			es := im.leafElems(n.id)
			es[0].flags = page.FlagBucket | page.FlagOverflow
			im.writeLeaf(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"value-becomes-bucket-ref", func(t testing.TB, im *relImage) []byte {
			// a value of exactly a reference's size, flagged as a bucket
			n := im.find(t, func(n relNodeInfo) bool { return n.typ == page.TypeLeaf && n.bucket == "/alpha" })
			es := im.leafElems(n.id)
			es[0].flags = page.FlagBucket
			es[0].value = page.Ref{Root: 3, Birth: 1}.Encode(make([]byte, page.RefSize))
			im.writeLeaf(n.id, es)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"leaf-overflow-length", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, func(n relNodeInfo) bool { return n.typ == page.TypeOverflow })
			leaf := n.parent
			es := im.leafElems(leaf)
			for i, e := range es {
				if e.flags&page.FlagOverflow != 0 {
					r, _ := page.DecodeRef(e.value)
					r.Seq = 1 << 40
					es[i].value = r.Encode(make([]byte, page.RefSize))
				}
			}
			im.writeLeaf(leaf, es)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"leaf-overflow-outside-file", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, func(n relNodeInfo) bool { return n.typ == page.TypeOverflow })
			es := im.leafElems(n.parent)
			for i, e := range es {
				if e.flags&page.FlagOverflow != 0 {
					r, _ := page.DecodeRef(e.value)
					r.Root = page.ID(len(im.b)/im.ps + 7)
					es[i].value = r.Encode(make([]byte, page.RefSize))
				}
			}
			im.writeLeaf(n.parent, es)
			im.trust()
			return im.b
		}, relCheckFails, "outside the file"},
		{"overflow-run-past-end", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, func(n relNodeInfo) bool { return n.typ == page.TypeOverflow })
			node := im.node(n.id)
			page.PutHeader(node, n.id, n.birth, page.TypeOverflow, 1<<30, 0)
			page.Seal(node[:len(node)])
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"nested-bucket-loop", func(t testing.TB, im *relImage) []byte {
			// beta/inner's reference points back at beta's own root
			beta := im.find(t, func(n relNodeInfo) bool { return n.bucket == "/beta" && n.depth == 0 })
			es := im.leafElems(beta.id)
			for i, e := range es {
				if e.flags&page.FlagBucket != 0 {
					r, _ := page.DecodeRef(e.value)
					r.Root, r.Birth = beta.id, beta.birth
					es[i].value = r.Encode(make([]byte, page.RefSize))
				}
			}
			im.writeLeaf(beta.id, es)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"wrong-node-type", func(t testing.TB, im *relImage) []byte {
			n := im.find(t, isOld(im, page.TypeLeaf))
			node := im.node(n.id)
			page.PutHeader(node, n.id, n.birth, page.TypeFreelist, page.Overflow(node), page.Count(node))
			page.Seal(node)
			im.trust()
			return im.b
		}, relCheckFails, ""},
		{"free-page-also-reachable", func(t testing.TB, im *relImage) []byte {
			leaf := im.find(t, isOld(im, page.TypeLeaf))
			im.setFree(t, leaf.id, true)
			im.trust()
			return im.b
		}, relCheckFails, "free"},
		{"page-neither-free-nor-reachable", func(t testing.TB, im *relImage) []byte {
			runs := im.freeRuns(t)
			if len(runs) == 0 {
				t.Fatal("base image has no free pages")
			}
			im.setFree(t, runs[0].Start, false)
			im.trust()
			return im.b
		}, relCheckFails, "neither reachable nor free"},
		{"free-bit-beyond-page-count", func(t testing.TB, im *relImage) []byte {
			im.setFree(t, page.ID(im.meta[im.newest].PgCount+3), true)
			im.trust()
			return im.b
		}, relOpenCorrupt | relFallback | relCheckFails, ""},
		{"free-index-chunk-outside-file", func(t testing.TB, im *relImage) []byte {
			m := im.meta[im.newest]
			n := im.node(m.Freelist)
			chunks := im.freeChunks(t)
			chunks[0].ID = page.ID(m.PgCount + 9)
			page.PutFreeIndex(n, im.ps, chunks)
			page.Seal(n)
			im.trust()
			return im.b
		}, relOpenCorrupt | relFallback, ""},
		{"free-index-torn", func(t testing.TB, im *relImage) []byte {
			relTear(im.node(im.meta[im.newest].Freelist)[page.HeaderSize:512])
			return im.b
		}, relFallback, ""},
		{"free-chunk-torn", func(t testing.TB, im *relImage) []byte {
			_, node, _ := im.freeBitmap(t, 2)
			relTear(im.node(node)[page.HeaderSize:512])
			return im.b
		}, relOpenCorrupt | relFallback, ""},
		{"truncated-half", func(t testing.TB, im *relImage) []byte {
			return im.b[:len(im.b)/2/im.ps*im.ps]
		}, relOpenCorrupt, ""},
		{"truncated-mid-page", func(t testing.TB, im *relImage) []byte {
			return im.b[:len(im.b)-im.ps/2]
		}, relOpenCorrupt | relNewest | relFallback, ""},
		{"truncated-to-metas", func(t testing.TB, im *relImage) []byte {
			return im.b[:2*im.ps]
		}, relOpenCorrupt, ""},
		{"truncated-inside-meta", func(t testing.TB, im *relImage) []byte {
			return im.b[:100]
		}, relOpenCorrupt, ""},
		{"truncated-to-zero", func(t testing.TB, im *relImage) []byte {
			return nil
		}, relFresh, ""},
		{"all-zeros", func(t testing.TB, im *relImage) []byte {
			return make([]byte, len(im.b))
		}, relOpenCorrupt, ""},
		{"all-ones", func(t testing.TB, im *relImage) []byte {
			return bytes.Repeat([]byte{0xff}, len(im.b))
		}, relOpenCorrupt, ""},
		{"not-mapkv-text", func(t testing.TB, im *relImage) []byte {
			return []byte(strings.Repeat("this is not a database, just some text.\n", 200))
		}, relOpenCorrupt, ""},
		{"not-mapkv-random", func(t testing.TB, im *relImage) []byte {
			b := make([]byte, 8<<10)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return b
		}, relOpenCorrupt, ""},
		{"not-mapkv-sqlite", func(t testing.TB, im *relImage) []byte {
			b := make([]byte, 8192)
			copy(b, "SQLite format 3\x00\x10\x00\x01\x01\x00\x40\x20\x20")
			return b
		}, relOpenCorrupt, ""},
		{"not-mapkv-bbolt-like", func(t testing.TB, im *relImage) []byte {
			b := make([]byte, 16384)
			for _, off := range []int{0, 4096} {
				copy(b[off+16:], []byte{0xed, 0xda, 0x0c, 0xed, 2, 0, 0, 0, 0, 0x10})
			}
			return b
		}, relOpenCorrupt, ""},
	}
}

// relOutcome opens path and classifies what happened; it fails the test
// if the outcome is not allowed. It then runs everything a program might
// over the file.
func relOutcome(t *testing.T, path string, c relCorruptCase, newest, older *relBucket) (outcome string) {
	opts := &mapkv.Options{PageSize: 1024}
	db, err := mapkv.Open(path, opts)
	if err != nil {
		if !errors.Is(err, mapkv.ErrCorrupt) {
			t.Errorf("Open: %v does not wrap ErrCorrupt", err)
			return "open-error"
		}
		if c.allow&relOpenCorrupt == 0 {
			t.Errorf("Open failed (%v); the case allows %s", err, relAllowed(c.allow))
		}
		if c.want != "" && !strings.Contains(err.Error(), c.want) && c.allow&relCheckFails == 0 {
			t.Errorf("Open error %q does not mention %q", err, c.want)
		}
		// A read-only open must fail the same way.
		if db, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true}); err == nil {
			relAbuse(t, db)
			db.Close()
		}
		return "open-corrupt"
	}
	defer db.Close()
	st := db.Stats()
	checkErr := db.Check()
	got, readErr := relDumpDB(db)
	switch {
	case st.MetaFallback != "":
		outcome = "fallback"
		if c.allow&relFallback == 0 {
			t.Errorf("Open fell back to the older meta (%s); the case allows %s", st.MetaFallback, relAllowed(c.allow))
		}
		if checkErr != nil {
			t.Errorf("after falling back: %v", checkErr)
		}
		if readErr != nil || (relDiff(got, older, "") != "" && relDiff(got, newest, "") != "") {
			t.Errorf("after falling back, the state is not the older commit: %v %s", readErr, relDiff(got, older, ""))
		}
	case checkErr != nil:
		outcome = "check-fails"
		var ce *mapkv.CheckError
		if !errors.Is(checkErr, mapkv.ErrCorrupt) {
			t.Errorf("Check error %v does not wrap ErrCorrupt", checkErr)
		}
		if !errors.As(checkErr, &ce) || len(ce.Problems) == 0 {
			t.Logf("Check error is not a CheckError listing problems: %v", checkErr)
		}
		if c.allow&relCheckFails == 0 {
			t.Errorf("Check found problems (%v); the case allows %s", checkErr, relAllowed(c.allow))
		}
		if c.want != "" && !strings.Contains(checkErr.Error(), c.want) {
			t.Errorf("Check error %q does not mention %q", checkErr, c.want)
		}
	default:
		outcome = "clean"
		switch {
		case c.allow&relFresh != 0:
			if readErr != nil || len(got.sub) != 0 {
				t.Errorf("an empty file did not open as an empty database: %v", readErr)
			}
			outcome = "fresh"
		case c.allow&relNewest != 0:
			if readErr != nil || relDiff(got, newest, "") != "" {
				t.Errorf("opened clean but the state is not the newest commit: %v %s", readErr, relDiff(got, newest, ""))
			}
		default:
			t.Errorf("damage went unnoticed: Open used the newest meta and Check is clean (read: %v); the case allows %s", readErr, relAllowed(c.allow))
		}
	}
	relAbuse(t, db)
	return outcome
}

func relAllowed(a int) string {
	var s []string
	for i, n := range []string{"open-corrupt", "fallback", "newest", "check-fails", "fresh"} {
		if a&(1<<i) != 0 {
			s = append(s, n)
		}
	}
	return strings.Join(s, " or ")
}

// relAbuse runs readers, statistics, snapshots and a write over db. It
// cares only that nothing panics (relCatch turns a panic into a failure).
func relAbuse(t *testing.T, db *mapkv.DB) {
	_ = db.View(func(tx *mapkv.Tx) error {
		relDump(tx)
		tx.ForEachBucket(func(name []byte, b *mapkv.Bucket) error {
			b.Stats()
			relWalkAll(b, 0)
			return nil
		})
		tx.Check(nil)
		tx.WriteTo(io.Discard)
		if tx.Size() <= 64<<20 {
			// Into memory: not the image of a file whose meta names a
			// terabyte (a log's checksummed meta may, FuzzLogReplay).
			var buf bytes.Buffer
			tx.WriteTo(&buf)
		}
		return nil
	})
	db.Stats()
	_ = db.Update(func(tx *mapkv.Tx) error {
		for _, name := range []string{"alpha", "beta", "gamma", "new"} {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				continue
			}
			for i := 0; i < 40; i++ {
				b.Put([]byte(fmt.Sprintf("f%06d", i*7)), bytes.Repeat([]byte("w"), i*40))
				b.Delete([]byte(fmt.Sprintf("f%06d", i*13)))
			}
			if c := b.Bucket([]byte("inner")); c != nil {
				c.Put([]byte("k3"), []byte("v3"))
			}
		}
		tx.DeleteBucket([]byte("gamma"))
		return nil
	})
	db.Check()
	relDumpDB(db)
}

// relWalkAll moves cursors every way over b and its nested buckets, with
// a bound on the steps so that a damaged tree cannot make it run long.
func relWalkAll(b *mapkv.Bucket, depth int) {
	if b == nil || depth > 8 {
		return
	}
	c := b.Cursor()
	steps := 0
	for k, v := c.First(); k != nil && steps < 5000; k, v = c.Next() {
		steps++
		if v == nil {
			relWalkAll(b.Bucket(k), depth+1)
		}
		b.Get(k)
	}
	for k, _ := c.Last(); k != nil && steps < 10000; k, _ = c.Prev() {
		steps++
	}
	for _, s := range []string{"", "f000150", "zzz", "\x00"} {
		c.Seek([]byte(s))
		c.Next()
		c.Prev()
	}
	for range b.Range([]byte("f000010"), []byte("f000020")) {
	}
}

// relCatch runs fn and turns a panic into a test failure with its stack.
func relCatch(t *testing.T, what string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("PANIC in %s: %v\n%s", what, r, debug.Stack())
		}
	}()
	fn()
}

func TestCorruptFiles(t *testing.T) {
	base, newest, older := relCorruptBase(t)
	baseImg := relLoadImage(t, base)
	update := os.Getenv("MAPKV_UPDATE_CORPUS") != ""
	dir := t.TempDir()
	var summary []string
	for _, c := range relCorruptCases() {
		t.Run(c.name, func(t *testing.T) {
			b := c.damage(t, baseImg.clone())
			path := filepath.Join(dir, c.name+".db")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if update {
				relWriteGzip(t, filepath.Join("testdata", "corrupt", c.name+".db.gz"), b)
			}
			relCatch(t, c.name, func() {
				summary = append(summary, c.name+": "+relOutcome(t, path, c, newest, older))
			})
		})
	}
	t.Logf("%d damaged files:\n%s", len(summary), strings.Join(summary, "\n"))
}

// TestCorruptBitFlips flips single bits all over a database, page by page,
// and requires that every flip in a page the newest state uses is caught
// (Open fails, falls back to the older commit, or Check reports it) and
// that a flip anywhere else changes nothing. Nothing may panic.
func TestCorruptBitFlips(t *testing.T) {
	base, newest, older := relCorruptBase(t)
	im := relLoadImage(t, base)
	used := map[page.ID]bool{0: true, page.ID(im.newest): true}
	for _, n := range im.walk() {
		for i := 0; i <= int(page.Overflow(im.pageBytes(n.id))); i++ {
			used[n.id+page.ID(i)] = true
		}
	}
	fl := []page.ID{im.meta[im.newest].Freelist}
	for _, c := range im.freeChunks(t) {
		if c.ID != 0 {
			fl = append(fl, c.ID)
		}
	}
	for _, id := range fl {
		for i := 0; i <= int(page.Overflow(im.pageBytes(id))); i++ {
			used[id+page.ID(i)] = true
		}
	}
	seed := relSeed(t, "MAPKV_BITFLIP_SEED")
	rng := rand.New(rand.NewPCG(seed, 3))
	perPage := relEnvInt("MAPKV_BITFLIP_PER_PAGE", 2)
	dir := t.TempDir()
	counts := map[string]int{}
	pages := len(base) / im.ps
	for id := 0; id < pages; id++ {
		for j := 0; j < perPage; j++ {
			off := id*im.ps + rng.IntN(im.ps)
			if j == 0 {
				off = id*im.ps + rng.IntN(page.HeaderSize) // the header, always
			}
			bit := byte(1) << rng.IntN(8)
			b := append([]byte(nil), base...)
			b[off] ^= bit
			path := filepath.Join(dir, "flip.db")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			inMeta := id < 2 && off%im.ps < page.MetaSize
			c := relCorruptCase{name: fmt.Sprintf("page %d byte %d bit %#x", id, off%im.ps, bit)}
			switch {
			case id == 1-im.newest && inMeta:
				c.allow = relNewest | relFallback // the older meta: not needed, but reported
			case inMeta:
				c.allow = relFallback
			case id < 2:
				c.allow = relNewest // beyond a meta's checksummed bytes
			case used[page.ID(id)]:
				c.allow = relOpenCorrupt | relFallback | relCheckFails
			default:
				c.allow = relNewest // a free page, or beyond the high-water mark
			}
			t.Run(c.name, func(t *testing.T) {
				relCatch(t, c.name, func() { counts[relOutcome(t, path, c, newest, older)]++ })
			})
		}
	}
	t.Logf("seed %d: %d bit flips over %d pages: %v", seed, pages*perPage, pages, counts)
}

// TestCorruptCorpus opens every file of testdata/corrupt: none may panic,
// and each must fail with ErrCorrupt, fall back, or fail Check (or, for
// damage in pages nothing uses, open clean).
func TestCorruptCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "corrupt", "*.db.gz"))
	if len(files) == 0 {
		t.Skip("no corpus in testdata/corrupt")
	}
	outcomes := map[string]int{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b := relReadGzip(t, f)
			path := filepath.Join(t.TempDir(), "c.db")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			relCatch(t, f, func() {
				db, err := mapkv.Open(path, nil)
				if err != nil {
					if !errors.Is(err, mapkv.ErrCorrupt) {
						t.Errorf("Open: %v does not wrap ErrCorrupt", err)
					}
					outcomes["open-corrupt"]++
					return
				}
				defer db.Close()
				switch {
				case db.Stats().MetaFallback != "":
					outcomes["fallback"]++
				case db.Check() != nil:
					outcomes["check-fails"]++
				default:
					outcomes["clean"]++
				}
				relAbuse(t, db)
			})
		})
	}
	t.Logf("%d files: %v", len(files), outcomes)
}

func relWriteGzip(t testing.TB, path string, b []byte) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func relReadGzip(t testing.TB, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCorruptMetaAfterShrink damages the newest meta right after a commit
// that cut the file short. The older meta then names pages past the end
// of the file (pages that were free in both states), so Open cannot fall
// back to it and fails with ErrCorrupt: allowed, but the one case of a
// single broken meta slot that loses the whole file.
func TestCorruptMetaAfterShrink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shrunk.db")
	opts := &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 4096, ShrinkThreshold: 8192}
	db, err := mapkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	m := newRelBucket()
	if err := relCommit(db, m, relFill("a", 0, 2000, 30)); err != nil {
		t.Fatal(err)
	}
	if err := relCommit(db, m, []relOp{{kind: relBulkDel, path: []string{"a"}, key: "f000010", hi: "f002000"}}); err != nil {
		t.Fatal(err)
	}
	// The pages the delete freed become reusable, and the tail is cut, in
	// the commits after it.
	var shrinks int64
	for i := 0; i < 8 && shrinks == 0; i++ {
		if err := relCommit(db, m, relFill("a", i, 1, 1)); err != nil {
			t.Fatal(err)
		}
		shrinks = db.Stats().ShrinkN
	}
	db.Close()
	if shrinks == 0 {
		t.Skip("the last commit did not shrink the file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	im := relLoadImage(t, b)
	b[im.newest*im.ps+50] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	relCatch(t, "open", func() {
		db, err := mapkv.Open(path, opts)
		if err != nil {
			if !errors.Is(err, mapkv.ErrCorrupt) {
				t.Fatalf("Open: %v does not wrap ErrCorrupt", err)
			}
			t.Logf("newest meta broken after a shrink: Open fails: %v", err)
			return
		}
		defer db.Close()
		t.Logf("newest meta broken after a shrink: Open falls back: %s; Check: %v", db.Stats().MetaFallback, db.Check())
	})
}

// relDAG replaces bucket name's tree with a chain of depth branch nodes,
// each of whose fanout entries points at the next node, over one of the
// bucket's leaves: a tree of fanout^depth leaf visits made of depth+1
// nodes. It writes the branches into free pages (taken out of the free
// list) and trusts the newest meta.
func (im *relImage) relDAG(t testing.TB, name string, depth, fanout int) {
	tx := im.meta[im.newest].TxID
	leaf := im.find(t, func(n relNodeInfo) bool { return n.typ == page.TypeLeaf && n.bucket == "/"+name })
	// The bucket's other nodes become free: only the shared chain is wrong.
	for _, n := range im.walk() {
		if n.bucket == "/"+name && n.id != leaf.id {
			for i := 0; i <= int(page.Overflow(im.pageBytes(n.id))); i++ {
				im.setFree(t, n.id+page.ID(i), true)
			}
		}
	}
	var pages []page.ID
	for _, r := range im.freeRuns(t) {
		for p := r.Start; p < r.End() && len(pages) < depth; p++ {
			pages = append(pages, p)
		}
	}
	if len(pages) < depth {
		t.Fatalf("base image has %d free pages, need %d", len(pages), depth)
	}
	for _, p := range pages {
		im.setFree(t, p, false)
	}
	child, birth := leaf.id, leaf.birth
	for i := depth - 1; i >= 0; i-- {
		id := pages[i]
		n := im.node(id)
		clear(n)
		page.PutHeader(n, id, tx, page.TypeBranch, 0, fanout)
		w := page.NewBranchWriter(n, fanout)
		for j := 0; j < fanout; j++ {
			w.Add([]byte(fmt.Sprintf("f%06d", j)), child, birth)
		}
		page.Seal(n)
		child, birth = id, tx
	}
	root := im.find(t, func(n relNodeInfo) bool { return n.bucket == "" && n.typ == page.TypeLeaf })
	es := im.leafElems(root.id)
	for i, e := range es {
		if string(e.key) == name {
			r, _ := page.DecodeRef(e.value)
			r.Root, r.Birth = child, birth
			es[i].value = r.Encode(make([]byte, len(e.value)))
		}
	}
	im.writeLeaf(root.id, es)
	im.trust()
}

// TestCorruptSharedSubtree opens a file whose bucket is a chain of
// branches all of whose entries point at the next one: 13 nodes that read
// as 4^12 leaves. Check must report the shared pages and Stats and
// DeleteBucket must give up quickly with ErrCorrupt (both walked every
// path, exponentially long, before fix(reliability) bounded them by the
// file's page count). The file must still open and check as before.
func TestCorruptSharedSubtree(t *testing.T) {
	base, _, _ := relCorruptBase(t)
	im := relLoadImage(t, base)
	im.relDAG(t, "alpha", 12, 4)
	path := filepath.Join(t.TempDir(), "dag.db")
	if err := os.WriteFile(path, im.b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := mapkv.Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() { db.Close() }()
	before := db.Check()
	if before == nil || !strings.Contains(before.Error(), "twice") {
		t.Errorf("Check of a shared subtree: %v", before)
	}
	start := time.Now()
	err = db.View(func(tx *mapkv.Tx) error {
		tx.Bucket([]byte("alpha")).Stats()
		return tx.Err()
	})
	if !errors.Is(err, mapkv.ErrCorrupt) {
		t.Errorf("Bucket.Stats over a shared subtree: got %v, want an error wrapping ErrCorrupt", err)
	}
	err = db.Update(func(tx *mapkv.Tx) error { return tx.DeleteBucket([]byte("alpha")) })
	if !errors.Is(err, mapkv.ErrCorrupt) {
		t.Errorf("DeleteBucket of a shared subtree: got %v, want an error wrapping ErrCorrupt", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stats and DeleteBucket took %v over 13 nodes", d)
	}
	db.Close()
	db, err = mapkv.Open(path, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if after := db.Check(); after == nil || after.Error() != before.Error() {
		t.Errorf("Check changed after the failed delete: %v, was %v", after, before)
	}
}

// TestCorruptSharedSubtreeDeferred: the same chain of branches under a
// meta that deferred its free list (page.MetaFreeDeferred), so that a
// read-write Open walks every tree to rebuild the list. The walk must
// stop at the shared pages (it is bounded by the file's page count): Open
// succeeds, reuses no page, says why in Stats.FreeListLost, and Check
// reports the shared pages.
func TestCorruptSharedSubtreeDeferred(t *testing.T) {
	base, _, _ := relCorruptBase(t)
	im := relLoadImage(t, base)
	im.relDAG(t, "alpha", 12, 4)
	m := im.meta[im.newest]
	m.Flags |= page.MetaFreeDeferred
	m.Freelist, m.FreeTx = 0, 0
	im.setMeta(im.newest, m)
	path := filepath.Join(t.TempDir(), "dag.db")
	if err := os.WriteFile(path, im.b, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	db, err := mapkv.Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %v over 13 nodes", d)
	}
	st := db.Stats()
	if st.FreeListLost == "" || st.FreePageN != 0 {
		t.Errorf("Open over a shared subtree: FreeListLost %q, %d free pages; want a reason and none", st.FreeListLost, st.FreePageN)
	}
	t.Logf("Stats.FreeListLost: %s", st.FreeListLost)
	if err := db.Check(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("Check of a shared subtree: %v", err)
	}
}

// TestCorruptKeyPrefixes rewrites a leaf with a common prefix its keys do
// not share (a valid checksum over a bad node). Lookups search the prefix
// arrays, scans read the elements: if Check passes such a node, Get and
// the cursors disagree on a file Check calls clean.
func TestCorruptKeyPrefixes(t *testing.T) {
	base, _, _ := relCorruptBase(t)
	im := relLoadImage(t, base)
	n := im.find(t, func(n relNodeInfo) bool { return n.typ == page.TypeLeaf && n.bucket == "/alpha" })
	es := im.leafElems(n.id)
	node := im.node(n.id)
	birth, ov := page.Birth(node), page.Overflow(node)
	clear(node)
	page.PutHeader(node, n.id, birth, page.TypeLeaf, ov, len(es))
	w := page.NewLeafWriter(node, len(es), []byte("g")) // the keys begin with "f"
	for _, e := range es {
		w.Add(e.flags, e.key, e.value)
	}
	page.Seal(node)
	im.trust()
	path := filepath.Join(t.TempDir(), "prefix.db")
	if err := os.WriteFile(path, im.b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := mapkv.Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	checkErr := db.Check()
	_, readErr := relDumpDB(db)
	t.Logf("Check: %v; reading: %v", checkErr, readErr)
	if checkErr == nil {
		t.Fatalf("Check passes a node whose keys do not begin with its common prefix; lookups search the prefix arrays, so Get misses keys that ForEach yields (%v). Found by FuzzOpenSealed.", readErr)
	}
	if !errors.Is(checkErr, mapkv.ErrCorrupt) {
		t.Fatalf("Check: %v does not wrap ErrCorrupt", checkErr)
	}
}

// TestCorruptWriteOverDisorderedLeaf writes to a bucket one of whose
// leaves has a key out of order (valid checksum, trusted meta). Check
// reports it; the write must fail with an error, not panic.
func TestCorruptWriteOverDisorderedLeaf(t *testing.T) {
	base, _, _ := relCorruptBase(t)
	im := relLoadImage(t, base)
	n := im.find(t, func(n relNodeInfo) bool {
		return n.typ == page.TypeLeaf && n.bucket == "/alpha" && len(im.leafElems(n.id)) > 3
	})
	es := im.leafElems(n.id)
	first := append([]byte(nil), es[0].key...)
	es[1].key = []byte("a") // below the others, and shares none of their prefix
	im.writeLeaf(n.id, es)
	im.trust()
	path := filepath.Join(t.TempDir(), "disorder.db")
	if err := os.WriteFile(path, im.b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := mapkv.Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	if err := db.Check(); !errors.Is(err, mapkv.ErrCorrupt) {
		t.Errorf("Check of a leaf with keys out of order: %v", err)
	}
	var p any
	func() {
		defer func() { p = recover() }()
		err = db.Update(func(tx *mapkv.Tx) error {
			return tx.Bucket([]byte("alpha")).Put(first, []byte("x"))
		})
	}()
	if p != nil {
		t.Fatalf("Update on a file with a leaf whose keys are out of order panicked out of Update (%v) instead of returning ErrCorrupt: see btree.TestApplyDamagedLeafOrder", p)
	}
	t.Logf("Update: %v", err)
}

// TestCorruptNotLaundered flips a bit in a value of an old leaf (no
// re-seal: bit rot) and then commits a change to another key of the same
// leaf. The commit copies the leaf: it must not copy the damage into a new
// node with a valid checksum, after which Check is clean and the value
// silently wrong. (Open verifies only the newest commit's nodes, so the
// flip is found by Check, or by a write that reads the node.)
func TestCorruptNotLaundered(t *testing.T) {
	base, _, _ := relCorruptBase(t)
	im := relLoadImage(t, base)
	n := im.find(t, func(n relNodeInfo) bool {
		return n.typ == page.TypeLeaf && n.bucket == "/alpha" && n.birth < im.meta[im.newest].TxID && len(im.leafElems(n.id)) > 3
	})
	node := im.node(n.id)
	_, k, v, _ := page.LeafElem(node, 1)
	key, want := append([]byte(nil), k...), append([]byte(nil), v...)
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(v))) - uintptr(unsafe.Pointer(unsafe.SliceData(node))))
	node[off] ^= 0x01 // the value's first byte; the checksum is left stale
	path := filepath.Join(t.TempDir(), "rot.db")
	if err := os.WriteFile(path, im.b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := mapkv.Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	if err := db.Check(); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("Check of a flipped bit: %v", err)
	}
	var p any
	func() {
		defer func() { p = recover() }()
		err = db.Update(func(tx *mapkv.Tx) error {
			return tx.Bucket([]byte("alpha")).Put(append(append([]byte(nil), key...), 'x'), []byte("new"))
		})
	}()
	if p != nil {
		t.Fatalf("Update over a flipped bit panicked: %v", p)
	}
	if err != nil {
		t.Logf("Update over the damaged leaf: %v", err)
		return // refused: the damage stays visible
	}
	var got []byte
	db.View(func(tx *mapkv.Tx) error {
		got = append([]byte(nil), tx.Bucket([]byte("alpha")).Get(key)...)
		return nil
	})
	if cerr := db.Check(); cerr == nil && !bytes.Equal(got, want) {
		t.Fatalf("a commit copied a leaf with a flipped bit (stale checksum) into a new node with a valid checksum: Check is now clean and key %q reads %q instead of %q. The writer must verify the nodes it rewrites or frees (btree.Writer.read) and refuse the commit with ErrCorrupt", key, got, want)
	}
}

// TestTrustOwnNodes: a handle's commits read the nodes its earlier
// commits built without verifying them again (btree.Writer.TrustFrom),
// and verify every node older than the handle: after a reopen, the first
// commit trusts nothing, so damage written behind a checksum while no
// handle was open is still found (TestCorruptNotLaundered).
func TestTrustOwnNodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trust.db")
	db := mustOpen(t, path, nil)
	put := func(db *mapkv.DB, i int) {
		t.Helper()
		err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put(fmt.Appendf(nil, "key-%08d", i*7919%100000), bytes.Repeat([]byte{'v'}, 100))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2000 {
		put(db, i)
	}
	// Every commit after the first reads at least the bucket's root,
	// which the commit before built.
	if n := mapkv.TrustedReadsForTest(db); n < 1999 {
		t.Fatalf("2,000 commits of one handle read %d nodes on trust, want at least 1,999", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, path, nil)
	defer db.Close()
	put(db, 2000)
	if n := mapkv.TrustedReadsForTest(db); n != 0 {
		t.Fatalf("the first commit after a reopen read %d nodes on trust, want 0: they were built before the handle opened", n)
	}
	put(db, 2001)
	if n := mapkv.TrustedReadsForTest(db); n == 0 {
		t.Fatalf("the second commit after a reopen read no node on trust")
	}
}

// TestScanDamagedElement: a read transaction's scan steps within a leaf on
// a fast path of its own (Cursor.Next); an element there whose key starts
// inside the node's header, or whose value runs past the node, must end
// the scan with ErrCorrupt, not hand out bytes of the header or of the
// pages after the node.
func TestScanDamagedElement(t *testing.T) {
	img, _, _ := relCorruptBase(t)
	for _, c := range []struct {
		name  string
		patch func(elem []byte, nodeLen int)
	}{
		{"key in the header", func(e []byte, _ int) { binary.LittleEndian.PutUint32(e[0:], 8) }},
		{"value past the node", func(e []byte, n int) { binary.LittleEndian.PutUint32(e[8:], uint32(n)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			im := relLoadImage(t, img).clone()
			n := im.find(t, func(n relNodeInfo) bool {
				return n.typ == page.TypeLeaf && n.bucket == "/alpha" && len(im.leafElems(n.id)) > 3
			})
			es := im.leafElems(n.id)
			node := im.node(n.id)
			c.patch(node[page.ElemBase(node)+2*page.LeafElementSize:], len(node))
			page.Seal(node)
			im.trust()
			path := filepath.Join(t.TempDir(), "damaged.db")
			if err := os.WriteFile(path, im.b, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			damaged := string(es[2].key)
			err = db.View(func(tx *mapkv.Tx) error {
				cur := tx.Bucket([]byte("alpha")).Cursor()
				for k, v := cur.First(); k != nil; k, v = cur.Next() {
					if string(k) == damaged || len(v) > len(node) {
						return fmt.Errorf("the scan handed out the damaged element: key %q, value of %d bytes", k, len(v))
					}
					if string(k) == string(es[3].key) {
						return fmt.Errorf("the scan stepped over the damaged element to key %q", k)
					}
				}
				return nil
			})
			if !errors.Is(err, mapkv.ErrCorrupt) {
				t.Fatalf("scan over a damaged element: %v, want ErrCorrupt", err)
			}
		})
	}
}
