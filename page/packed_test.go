package page

import (
	"bytes"
	"fmt"
	"testing"
)

type testElem struct {
	flags uint16
	key   string
	val   []byte
}

// buildLeaf lays es out with LeafWriter in a 1 KiB leaf whose keys share cp.
func buildLeaf(cp string, es []testElem) []byte {
	leaf := make([]byte, 1024)
	PutHeader(leaf, 5, 2, TypeLeaf, 0, len(es))
	lw := NewLeafWriter(leaf, len(es), []byte(cp))
	for _, e := range es {
		lw.Add(e.flags, []byte(e.key), e.val)
	}
	return leaf
}

func packedElems() []testElem {
	ref := Ref{Root: 9, Birth: 2}.Encode(make([]byte, RefSize))
	return []testElem{
		{0, "pre/a", []byte("one")},
		{0, "pre/b", nil},
		{FlagBucket, "pre/bucket", ref},
		{0, "pre/c\x00", []byte("three")},
		{0, "pre/c\x00\x01", []byte("four")},
		{0, "pre/zzzzzz", bytes.Repeat([]byte{7}, 40)},
	}
}

// TestLeafPacked: LeafPacked accepts what LeafWriter lays out and says
// where its data ends, and refuses every departure from that layout
// which CopyFrom would carry into a new node.
func TestLeafPacked(t *testing.T) {
	es := packedElems()
	leaf := buildLeaf("pre/", es)
	lw := NewLeafWriter(make([]byte, 1024), len(es), []byte("pre/"))
	for _, e := range es {
		lw.Add(e.flags, []byte(e.key), e.val)
	}
	if end, ok := LeafPacked(leaf); !ok || end != lw.Used() {
		t.Fatalf("LeafPacked of a LeafWriter leaf: %d, %v; want %d, true", end, ok, lw.Used())
	}
	eb := elemBase(leaf)
	pb := prefixBase(leaf)
	bad := map[string]func() []byte{
		"keys out of order": func() []byte {
			e := packedElems()
			e[3], e[4] = e[4], e[3]
			return buildLeaf("pre/", e)
		},
		"equal keys": func() []byte {
			e := packedElems()
			e[4].key = e[3].key
			return buildLeaf("pre/", e)
		},
		"a key without the common prefix": func() []byte {
			e := packedElems()
			e[2].key = "prX/bucket" // same prefix integer as "pre/bucket"
			return buildLeaf("pre/", e)
		},
		"a key shorter than the common prefix": func() []byte {
			e := packedElems()
			e[0].key = "pr"
			return buildLeaf("pre/", e)
		},
		"a wrong prefix": func() []byte {
			n := buildLeaf("pre/", packedElems())
			le.PutUint32(n[pb+4*2:], 1)
			return n
		},
		"a gap between two elements' data": func() []byte {
			n := buildLeaf("pre/", packedElems())
			e := eb + 1*LeafElementSize
			le.PutUint32(n[e+leafVSize:], le.Uint32(n[e+leafVSize:])+1)
			return n
		},
		"data in another order": func() []byte {
			n := buildLeaf("pre/", packedElems())
			a, b := eb+4*LeafElementSize, eb+5*LeafElementSize
			pa, pbb := le.Uint32(n[a:]), le.Uint32(n[b:])
			le.PutUint32(n[a:], pbb)
			le.PutUint32(n[b:], pa)
			return n
		},
		"a reference that is not 32 bytes": func() []byte {
			e := packedElems()
			e[0].flags = FlagOverflow
			return buildLeaf("pre/", e)
		},
		"a value past the end of the node": func() []byte {
			n := buildLeaf("pre/", packedElems())
			e := eb + 5*LeafElementSize
			le.PutUint32(n[e+leafVSize:], 2000)
			return n
		},
	}
	for name, mk := range bad {
		n := mk()
		if err := CheckNode(n, TypeLeaf); err != nil {
			t.Fatalf("%s: the node does not pass CheckNode (%v): the case tests nothing", name, err)
		}
		if end, ok := LeafPacked(n); ok {
			t.Errorf("%s: LeafPacked accepted it (end %d)", name, end)
		}
	}
}

// TestCopyFrom: a leaf built from runs of another's elements with Adds
// between them is the leaf that Adds alone build, byte for byte.
func TestCopyFrom(t *testing.T) {
	src := buildLeaf("pre/", packedElems())
	es := packedElems()
	for cut := 0; cut <= len(es); cut++ {
		for _, extra := range []testElem{{0, "pre/", []byte("first")}, {0, "pre/bz", bytes.Repeat([]byte{1}, 60)}, {0, "pre/zzzzzzz", nil}} {
			t.Run(fmt.Sprint(cut, extra.key), func(t *testing.T) {
				// The extra element goes where it sorts; cut splits the
				// runs copied around it once more.
				at := 0
				for at < len(es) && es[at].key < extra.key {
					at++
				}
				all := append(append(append([]testElem{}, es[:at]...), extra), es[at:]...)
				want := buildLeaf("pre/", all)
				got := make([]byte, 1024)
				PutHeader(got, 5, 2, TypeLeaf, 0, len(all))
				lw := NewLeafWriter(got, len(all), []byte("pre/"))
				if cut <= at {
					lw.CopyFrom(src, 0, cut)
					lw.CopyFrom(src, cut, at)
					lw.Add(extra.flags, []byte(extra.key), extra.val)
					lw.CopyFrom(src, at, len(es))
				} else {
					lw.CopyFrom(src, 0, at)
					lw.Add(extra.flags, []byte(extra.key), extra.val)
					lw.CopyFrom(src, at, cut)
					lw.CopyFrom(src, cut, len(es))
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("copied leaf differs from the added one:\n%x\n%x", got[:lw.Used()], want[:lw.Used()])
				}
				if end, ok := LeafPacked(got); !ok || end != lw.Used() {
					t.Fatalf("LeafPacked of the copy: %d, %v", end, ok)
				}
			})
		}
	}
}
