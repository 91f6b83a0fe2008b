package page

// FuzzNode hands arbitrary bytes to every decoder of the format: header
// accessors, CheckNode and the element accessors it guards, LeafPacked and
// the copy it allows, references, metas, free-list index and chunk nodes.
// None may panic or return a slice outside the node, whatever decodes must
// encode back to the same value, and a leaf copied in runs must be the
// leaf its elements build.
//
//	go test -run '^$' -fuzz '^FuzzNode$' -fuzztime 5m ./page

import (
	"bytes"
	"testing"
	"unsafe"
)

// fuzzSeeds returns valid nodes of each type, 1 KiB each.
func fuzzSeeds() [][]byte {
	const ps = 1024
	var out [][]byte

	leaf := make([]byte, ps)
	PutHeader(leaf, 7, 3, TypeLeaf, 0, 4)
	lw := NewLeafWriter(leaf, 4)
	lw.Add(0, []byte("a"), []byte("value a"))
	lw.Add(0, []byte("b"), nil)
	lw.Add(FlagBucket, []byte("nested"), Ref{Root: 9, Birth: 2, Seq: 5, Nested: 1}.Encode(make([]byte, RefSize)))
	lw.Add(FlagOverflow, []byte("z"), Ref{Root: 11, Birth: 3, Seq: 3000}.Encode(make([]byte, RefSize)))
	Seal(leaf)
	out = append(out, leaf)

	branch := make([]byte, ps)
	PutHeader(branch, 8, 3, TypeBranch, 0, 3)
	bw := NewBranchWriter(branch, 3)
	bw.Add([]byte("a"), 7, 3)
	bw.Add([]byte("m"), 12, 2)
	bw.Add([]byte("t"), 13, 1)
	Seal(branch)
	out = append(out, branch)

	meta := make([]byte, ps)
	PutMeta(meta, 1, &Meta{PageSize: ps, Root: Ref{Root: 8, Birth: 3}, Freelist: 14, FreeTx: 3, PgCount: 20, TxID: 3, CommitPages: 4, CommitHash: 99})
	out = append(out, meta)

	index := make([]byte, ps)
	PutHeader(index, 14, 3, TypeFreelist, 0, 0)
	PutFreeIndex(index, ps, []FreeChunk{{ID: 15, Birth: 3}})
	Seal(index)
	out = append(out, index)

	chunk := make([]byte, ps)
	PutHeader(chunk, 15, 3, TypeFreeChunk, 0, 0)
	bm := PutFreeChunk(chunk, 0, ps)
	SetBits(bm, 0, 16, 19)
	Seal(chunk)
	out = append(out, chunk)

	out = append(out, make([]byte, HeaderSize), []byte{1, 2, 3})
	return out
}

// within reports whether s lies inside node's bytes.
func within(s, node []byte) bool {
	if len(s) == 0 {
		return true
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(node)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(node))
}

func FuzzNode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, node []byte) {
		if len(node) > 1<<16 {
			return
		}
		if len(node) >= HeaderSize {
			_, _, _, _ = Checksum(node), PageID(node), Birth(node), Overflow(node)
			_, _ = NodeType(node).String(), Count(node)
		}
		_ = Verify(node, 7, 0)

		for _, typ := range []Type{TypeLeaf, TypeBranch} {
			if CheckNode(node, typ) != nil {
				continue
			}
			for i := 0; i < Count(node); i++ {
				if typ == TypeBranch {
					k, ok := BranchKey(node, i)
					if ok && !within(k, node) {
						t.Fatalf("BranchKey(%d) outside the node", i)
					}
					BranchChild(node, i)
					continue
				}
				k, ok := LeafKey(node, i)
				if ok && !within(k, node) {
					t.Fatalf("LeafKey(%d) outside the node", i)
				}
				f, k2, v, ok2 := LeafElem(node, i)
				if !ok2 {
					continue
				}
				if !within(k2, node) || !within(v, node) {
					t.Fatalf("LeafElem(%d) outside the node", i)
				}
				if !ok || !bytes.Equal(k, k2) {
					t.Fatalf("LeafKey(%d) and LeafElem(%d) disagree", i, i)
				}
				if f&(FlagBucket|FlagOverflow) != 0 {
					r, ok := DecodeRef(v)
					if !ok {
						t.Fatalf("LeafElem(%d) accepted a %d-byte reference", i, len(v))
					}
					if e := r.Encode(make([]byte, RefSize)); !bytes.Equal(e, v) {
						t.Fatalf("reference does not encode back: %x vs %x", e, v)
					}
				}
			}
		}

		if CheckNode(node, TypeLeaf) == nil {
			// A leaf LeafPacked accepts copies, in runs, into the leaf
			// that adding its elements one by one builds.
			if end, ok := LeafPacked(node); ok {
				if end > len(node) {
					t.Fatalf("LeafPacked: data ends at %d, past the node (%d)", end, len(node))
				}
				cnt := Count(node)
				a, b := make([]byte, len(node)), make([]byte, len(node))
				for _, d := range [][]byte{a, b} {
					PutHeader(d, PageID(node), Birth(node), TypeLeaf, Overflow(node), cnt)
				}
				wa := NewLeafWriter(a, cnt, CommonPrefix(node))
				wa.CopyFrom(node, 0, cnt/2)
				wa.CopyFrom(node, cnt/2, cnt)
				wb := NewLeafWriter(b, cnt, CommonPrefix(node))
				for i := 0; i < cnt; i++ {
					f, k, v, ok := LeafElem(node, i)
					if !ok {
						t.Fatalf("LeafPacked accepted a leaf whose element %d does not fit", i)
					}
					wb.Add(f, k, v)
				}
				if wa.Used() != end || !bytes.Equal(a, b) {
					t.Fatalf("CopyFrom of a packed leaf (end %d, used %d) differs from adding its elements", end, wa.Used())
				}
			}
		}

		for slot := ID(0); slot < 2; slot++ {
			m, err := DecodeMeta(node, slot)
			if err != nil {
				continue
			}
			b := make([]byte, MetaSize)
			PutMeta(b, slot, &m)
			m2, err := DecodeMeta(b, slot)
			if err != nil || m2 != m {
				t.Fatalf("meta does not encode back: %+v / %+v (%v)", m, m2, err)
			}
		}

		for _, ps := range []int{MinPageSize, 4096} {
			for _, pg := range []uint64{0, 2, 20, 9000, 1 << 40} {
				chunks, err := DecodeFreeIndex(node, pg, ps)
				if err == nil {
					b := make([]byte, FreeIndexSize(len(chunks)))
					PutHeader(b, PageID(node), Birth(node), TypeFreelist, 0, 0)
					PutFreeIndex(b, ps, chunks)
					c2, err := DecodeFreeIndex(b, pg, ps)
					if err != nil || len(c2) != len(chunks) {
						t.Fatalf("free-list index does not encode back: %v", err)
					}
					for i := range chunks {
						if chunks[i] != c2[i] {
							t.Fatalf("free-list index entry %d: %+v vs %+v", i, chunks[i], c2[i])
						}
					}
				}
				for c := uint64(0); c < 2; c++ {
					bm, err := FreeChunkBitmap(node, c, ps)
					if err != nil {
						continue
					}
					if !within(bm, node) {
						t.Fatal("chunk bitmap outside the node")
					}
					base := ID(c * ChunkBits(ps))
					BitmapRuns(bm, base, pg, func(r Run) {
						if r.Len == 0 || r.Start < 2 || uint64(r.End()) > pg {
							t.Fatalf("run %+v outside [2, %d)", r, pg)
						}
					})
				}
			}
		}

		// Sealing any node makes it verify.
		if len(node) >= HeaderSize {
			b := append([]byte(nil), node...)
			Seal(b)
			if err := Verify(b, PageID(b), Birth(b)); err != nil {
				t.Fatalf("a sealed node does not verify: %v", err)
			}
			if len(b) > HeaderSize {
				b[len(b)-1] ^= 1
				if Verify(b, PageID(b), 0) == nil {
					t.Fatal("a changed byte went unnoticed by the checksum")
				}
			}
		}
	})
}
