package btree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/mapkv/mapkv/page"
)

func init() {
	// Every Writer of these tests that trusts nodes (TrustFrom) checks
	// them too: a node some path built otherwise than LeafWriter or
	// BranchWriter would lay it out fails the test that built it.
	CheckTrusted = true
}

// trustTree builds, with TxIDs 1 to 3, a two-level tree of 16-byte keys
// (big-endian multiples of 16) and returns it with its root and a leaf
// of txid 3 below the root, its position in the root, and that leaf's
// keys.
func trustTree(t *testing.T) (tr *Tree, root page.ID, birth page.TxID, leaf page.ID, keys [][]byte) {
	t.Helper()
	const ps, pages = 4096, 64
	tr = &Tree{Data: make([]byte, pages*ps), PageSize: ps, PgCount: 2}
	a := &bumpAlloc{t: tr, limit: pages}
	key := func(i int) []byte {
		k := make([]byte, 16)
		binary.BigEndian.PutUint64(k[8:], uint64(i)*16)
		return k
	}
	for tx := 1; tx <= 3; tx++ {
		var muts []Mutation
		for i := (tx - 1) * 100; i < tx*100; i++ {
			muts = append(muts, Mutation{Key: key(i), Value: bytes.Repeat([]byte{byte(tx)}, 40)})
		}
		if tx == 3 {
			muts = muts[:0]
			for i := 0; i < 300; i += 3 {
				muts = append(muts, Mutation{Key: key(i), Value: bytes.Repeat([]byte{3}, 40)})
			}
		}
		w := &Writer{T: tr, A: a, TxID: page.TxID(tx), TrustFrom: 1}
		var err error
		if root, birth, err = w.Apply(root, birth, muts); err != nil {
			t.Fatal(err)
		}
	}
	n, err := tr.branchOrLeaf(root)
	if err != nil || page.NodeType(n) != page.TypeBranch || page.Count(n) < 3 {
		t.Fatalf("root %d: not a branch of 3 children or more (%v)", root, err)
	}
	var lb page.TxID
	leaf, lb = page.BranchChild(n, 1)
	ln, err := tr.branchOrLeaf(leaf)
	if err != nil || page.NodeType(ln) != page.TypeLeaf || lb != 3 || page.Birth(ln) != 3 || page.Count(ln) < 4 {
		t.Fatalf("leaf %d (birth %d): not a leaf of tx 3 with 4 keys or more (%v)", leaf, lb, err)
	}
	for i := 0; i < page.Count(ln); i++ {
		k, _ := page.LeafKey(ln, i)
		keys = append(keys, bytes.Clone(k))
	}
	return tr, root, birth, leaf, keys
}

// TestTrustedNodes: a Writer whose TrustFrom a node's birth reaches reads
// it without verifying its checksum (a value changed behind the checksum
// goes through; with TrustFrom 0, or with the node's own txid not the
// one its reference carries, the commit fails on the checksum), and a
// trusted node that no longer decodes fails the commit with
// page.ErrFormat instead of panicking out of Apply.
func TestTrustedNodes(t *testing.T) {
	defer func(c bool) { CheckTrusted = c }(CheckTrusted)
	// between returns a key that goes between the leaf's first two keys.
	between := func(t *testing.T, keys [][]byte) []byte {
		k := bytes.Clone(keys[0])
		k[15]++
		if bytes.Compare(k, keys[1]) >= 0 {
			t.Fatalf("no key between %x and %x", keys[0], keys[1])
		}
		return k
	}
	apply := func(t *testing.T, tr *Tree, root page.ID, birth page.TxID, trustFrom page.TxID, muts []Mutation) (err error) {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Apply panicked: %v", p)
			}
		}()
		w := &Writer{T: tr, A: &bumpAlloc{t: tr, limit: page.ID(len(tr.Data) / tr.PageSize)}, TxID: 4, TrustFrom: trustFrom}
		_, _, err = w.Apply(root, birth, muts)
		return err
	}

	t.Run("checksum", func(t *testing.T) {
		tr, root, birth, leaf, keys := trustTree(t)
		n, _ := tr.Node(leaf)
		_, _, v, _ := page.LeafElem(n, 2)
		v[0] ^= 0x40 // behind the checksum
		muts := []Mutation{{Key: between(t, keys), Value: []byte("new")}}
		for _, c := range []struct {
			name      string
			trustFrom page.TxID
			check     bool
			want      string // "" for success
		}{
			{"trusted", 1, false, ""},
			{"trusted, checked", 1, true, "checksum"},
			{"not trusted", 0, false, "checksum"},
			{"born before TrustFrom", 4, false, "checksum"},
		} {
			t2 := &Tree{Data: bytes.Clone(tr.Data), PageSize: tr.PageSize, PgCount: tr.PgCount}
			CheckTrusted = c.check
			err := apply(t, t2, root, birth, c.trustFrom, muts)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("%s: Apply: %v, want %q", c.name, err, c.want)
			}
		}
		// The leaf's header claims another txid than its reference:
		// not trusted, so verified (the header is under the checksum).
		binary.LittleEndian.PutUint64(n[16:], 2)
		if page.Birth(n) != 2 {
			t.Fatalf("the txid is not at header offset 16")
		}
		CheckTrusted = false
		if err := apply(t, tr, root, birth, 1, muts); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("leaf whose txid is not its reference's: Apply: %v, want a checksum error", err)
		}
	})

	t.Run("garbage", func(t *testing.T) {
		CheckTrusted = false
		tr, root, birth, leaf, keys := trustTree(t)
		n, _ := tr.Node(leaf)
		// Element 1's data position far outside the node: the copy of
		// the run from element 1 on slices out of range.
		eb := page.ElemBase(n)
		binary.LittleEndian.PutUint32(n[eb+page.LeafElementSize:], 0xfffffff0)
		muts := []Mutation{{Key: between(t, keys), Value: []byte("new")}}
		err := apply(t, tr, root, birth, 1, muts)
		if !errors.Is(err, page.ErrFormat) || !strings.Contains(err.Error(), "no longer decodes") {
			t.Fatalf("Apply over a trusted leaf with an element outside it: %v, want page.ErrFormat from trustedFault", err)
		}
		// The same node untrusted fails its checksum.
		if err := apply(t, tr, root, birth, 0, muts); !errors.Is(err, page.ErrFormat) || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("untrusted: %v, want a checksum error", err)
		}
		// A Writer that checks what it trusts finds it too.
		CheckTrusted = true
		if err := apply(t, tr, root, birth, 1, muts); !errors.Is(err, page.ErrFormat) {
			t.Fatalf("checked: %v, want page.ErrFormat", err)
		}
	})
}
