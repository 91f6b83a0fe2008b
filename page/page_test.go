package page

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestLayout pins the byte offsets written down in FORMAT.md.
func TestLayout(t *testing.T) {
	b := make([]byte, 4096)
	PutHeader(b, 0x0102030405060708, 0x1112131415161718, TypeLeaf, 0x21222324, 0x3132)
	want := []byte{
		0, 0, 0, 0, 0, 0, 0, 0, // checksum
		8, 7, 6, 5, 4, 3, 2, 1, // id
		0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, // txid
		0x24, 0x23, 0x22, 0x21, // overflow
		3, 0, // type, flags
		0x32, 0x31, // count
	}
	if !bytes.Equal(b[:HeaderSize], want) {
		t.Fatalf("header bytes\n got % x\nwant % x", b[:HeaderSize], want)
	}
	m := Meta{PageSize: 4096, Root: Ref{Root: 5, Birth: 6, Seq: 7, Nested: 8}, Freelist: 9, FreeTx: 10, PgCount: 11, TxID: 12, CommitPages: 13, CommitHash: 14}
	PutMeta(b, 1, &m)
	for off, v := range map[int]uint64{48: 5, 56: 6, 64: 7, 72: 8, 80: 9, 88: 10, 96: 11, 104: 12, 112: 13, 120: 14} {
		if got := le.Uint64(b[off:]); got != v {
			t.Errorf("meta offset %d = %d, want %d", off, got, v)
		}
	}
	if le.Uint32(b[32:]) != Magic || le.Uint32(b[36:]) != Version || le.Uint32(b[40:]) != 4096 {
		t.Error("meta magic/version/page size offsets")
	}
	got, err := DecodeMeta(b, 1)
	if err != nil || got != m {
		t.Fatalf("DecodeMeta = %+v, %v; want %+v", got, err, m)
	}
	b[100] ^= 1
	if _, err := DecodeMeta(b, 1); !errors.Is(err, ErrFormat) {
		t.Fatalf("flipped meta: %v", err)
	}
}

func TestLeafAndBranch(t *testing.T) {
	b := make([]byte, 1024)
	PutHeader(b, 7, 3, TypeLeaf, 0, 2)
	w := NewLeafWriter(b, 2)
	w.Add(0, []byte("a"), []byte("1"))
	w.Add(FlagBucket, []byte("b"), Ref{Root: 9}.Encode(make([]byte, RefSize)))
	Seal(b)
	if err := Verify(b, 7, 3); err != nil {
		t.Fatal(err)
	}
	if err := CheckNode(b, TypeLeaf); err != nil {
		t.Fatal(err)
	}
	f, k, v, ok := LeafElem(b, 1)
	r, _ := DecodeRef(v)
	if !ok || f != FlagBucket || string(k) != "b" || r.Root != 9 {
		t.Fatalf("elem 1: %v %q %v", f, k, r)
	}
	// A damaged position must be caught, not followed.
	le.PutUint32(b[elemBase(b):], 5000)
	if _, _, _, ok := LeafElem(b, 0); ok {
		t.Fatal("element outside the node accepted")
	}
	if err := Verify(b, 7, 3); err == nil {
		t.Fatal("checksum did not catch the change")
	}
	PutHeader(b, 8, 3, TypeBranch, 0, 1)
	bw := NewBranchWriter(b, 1)
	bw.Add([]byte("key"), 42, 2)
	if k, ok := BranchKey(b, 0); !ok || string(k) != "key" {
		t.Fatal("branch key")
	}
	if id, birth := BranchChild(b, 0); id != 42 || birth != 2 {
		t.Fatal("branch child")
	}
}

func TestFreelist(t *testing.T) {
	const ps = 1024
	bits := ChunkBits(ps)
	if bits == 0 || bits%64 != 0 || FreeBody+8+int(bits/8) > ps {
		t.Fatalf("chunk of %d bits does not fit a %d-byte page", bits, ps)
	}
	b := make([]byte, ps)
	PutHeader(b, 5, 1, TypeFreeChunk, 0, 0)
	bm := PutFreeChunk(b, 1, ps)
	base := ID(bits)
	SetBits(bm, base, base+3, base+6)
	SetBits(bm, base, base+10, base+11)
	var runs []Run
	if err := BitmapRuns(bm, base, uint64(base)+100, func(r Run) { runs = append(runs, r) }); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0] != (Run{base + 3, 3}) || runs[1] != (Run{base + 10, 1}) {
		t.Fatalf("runs %v", runs)
	}
	if err := BitmapRuns(bm, base, uint64(base)+8, func(Run) {}); err == nil {
		t.Fatal("free page past pgCount accepted")
	}
	if _, err := FreeChunkBitmap(b, 2, ps); err == nil {
		t.Fatal("wrong chunk number accepted")
	}
	idx := make([]byte, ps)
	PutHeader(idx, 4, 1, TypeFreelist, 0, 0)
	PutFreeIndex(idx, ps, []FreeChunk{{0, 0}, {5, 1}})
	got, err := DecodeFreeIndex(idx, uint64(base)+100, ps)
	if err != nil || len(got) != 2 || got[1] != (FreeChunk{5, 1}) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := DecodeFreeIndex(idx, 10, ps); err == nil {
		t.Fatal("index covering the wrong number of pages accepted")
	}
}

// TestSearch compares SearchLeaf and SearchBranch with a plain search over
// keys built to share long prefixes and 8-byte prefixes (ties), with and
// without a recorded common prefix.
func TestSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 300; round++ {
		stem := strings.Repeat("user", rng.IntN(4))
		set := map[string]bool{}
		for len(set) < 1+rng.IntN(60) {
			k := stem + strings.Repeat("x", rng.IntN(10)) + string(rune('a'+rng.IntN(3))) + fmt.Sprint(rng.IntN(50))
			if rng.IntN(10) == 0 {
				k = stem[:rng.IntN(len(stem)+1)] + "\x00"
			}
			if k != "" {
				set[k] = true
			}
		}
		var keys []string
		for k := range set {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		cp := []byte(keys[0][:CommonLen([]byte(keys[0]), []byte(keys[len(keys)-1]), 255)])
		if rng.IntN(2) == 0 {
			cp = nil
		}
		leaf := make([]byte, 64<<10)
		PutHeader(leaf, 2, 1, TypeLeaf, 0, len(keys))
		lw := NewLeafWriter(leaf, len(keys), cp)
		branch := make([]byte, 64<<10)
		PutHeader(branch, 3, 1, TypeBranch, 0, len(keys))
		bw := NewBranchWriter(branch, len(keys), cp)
		for i, k := range keys {
			lw.Add(0, []byte(k), nil)
			bw.Add([]byte(k), ID(i+10), 1)
		}
		probes := append(slices.Clone(keys), "", stem, stem+"y", "zzz", "\x00")
		for _, k := range keys {
			probes = append(probes, k+"\x00", k[:len(k)-1])
		}
		for _, p := range probes {
			want := sort.SearchStrings(keys, p)
			i, eq, ok := SearchLeaf(leaf, []byte(p))
			if !ok || i != want || eq != (want < len(keys) && keys[want] == p) {
				t.Fatalf("SearchLeaf(%q) = %d %v %v, want %d in %q (cp %q)", p, i, eq, ok, want, keys, cp)
			}
			wantB := max(sort.Search(len(keys), func(j int) bool { return keys[j] > p })-1, 0)
			if j, ok := SearchBranch(branch, []byte(p)); !ok || j != wantB {
				t.Fatalf("SearchBranch(%q) = %d, want %d in %q (cp %q)", p, j, wantB, keys, cp)
			}
		}
	}
}

// TestVerifyTrimmed: a node stored without its zero tail verifies as the
// whole node does, down to tails cut into its header, and fails as the
// whole node fails: another id or txid, a changed byte, a tail that was
// not zeros, a length it does not fit.
func TestVerifyTrimmed(t *testing.T) {
	const ps = 1024
	for _, fill := range []int{0, 3, HeaderSize, 100, ps - 1, 3 * ps} {
		n := max(ps, (fill+ps-1)/ps*ps)
		node := make([]byte, n)
		PutHeader(node, 7, 9, TypeLeaf, 0, 0)
		for i := HeaderSize; i < fill; i++ {
			node[i] = byte(i*31 + 1)
		}
		Seal(node)
		end := len(node)
		for end > 0 && node[end-1] == 0 {
			end--
		}
		b := node[:end]
		if err := VerifyTrimmed(b, n, 7, 9); err != nil {
			t.Fatalf("fill %d, stored %d of %d: %v", fill, end, n, err)
		}
		if err := VerifyTrimmed(b, n, 7, 0); err != nil {
			t.Fatalf("fill %d, any txid: %v", fill, err)
		}
		if VerifyTrimmed(b, n, 8, 9) == nil || VerifyTrimmed(b, n, 7, 10) == nil {
			t.Fatalf("fill %d: another id or txid verifies", fill)
		}
		if VerifyTrimmed(b, n+ps, 7, 9) == nil || VerifyTrimmed(b, end-1, 7, 9) == nil || VerifyTrimmed(b, HeaderSize-1, 7, 9) == nil {
			t.Fatalf("fill %d: a wrong length verifies", fill)
		}
		for _, at := range []int{0, 8, 16, HeaderSize, end - 1} {
			if at < 0 || at >= end {
				continue
			}
			d := append([]byte(nil), b...)
			d[at] ^= 4
			if VerifyTrimmed(d, n, 7, 9) == nil {
				t.Fatalf("fill %d: byte %d changed, still verifies", fill, at)
			}
		}
		if end < n {
			d := append(append([]byte(nil), b...), 1) // the tail was not zeros
			if VerifyTrimmed(d, n, 7, 9) == nil {
				t.Fatalf("fill %d: a nonzero byte in the tail verifies", fill)
			}
		}
		if err := Verify(node, 7, 9); err != nil {
			t.Fatalf("fill %d: the whole node: %v", fill, err)
		}
	}
}
