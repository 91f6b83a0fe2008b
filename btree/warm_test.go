package btree

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/mapkv/mapkv/page"
)

// warmTree builds a tree of three levels: 20,000 keys, 4 KiB pages.
func warmTree(t *testing.T) (*Tree, page.ID, page.TxID) {
	t.Helper()
	const ps, pages = 4096, 4096
	tr := &Tree{Data: make([]byte, pages*ps), PageSize: ps, PgCount: 2}
	a := &bumpAlloc{t: tr, limit: pages}
	var muts []Mutation
	for i := 0; i < 20000; i++ {
		k := make([]byte, 16)
		binary.BigEndian.PutUint64(k, uint64(i)*0x9e3779b97f4a7c15)
		muts = append(muts, Mutation{Key: k, Value: make([]byte, 100)})
	}
	slices.SortFunc(muts, func(a, b Mutation) int { return bytes.Compare(a.Key, b.Key) })
	root, birth, err := (&Writer{T: tr, A: a, TxID: 1}).Apply(0, 0, muts)
	if err != nil {
		t.Fatal(err)
	}
	return tr, root, birth
}

// treeNodes returns the nodes of the tree in the order a depth-first walk
// in key order meets them, and its leaves in key order.
func treeNodes(t *testing.T, tr *Tree, root page.ID) (nodes, leaves []page.ID) {
	t.Helper()
	var visit func(id page.ID)
	visit = func(id page.ID) {
		n, err := tr.branchOrLeaf(id)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, id)
		if page.NodeType(n) == page.TypeLeaf {
			leaves = append(leaves, id)
			return
		}
		for i := 0; i < page.Count(n); i++ {
			c, _ := page.BranchChild(n, i)
			visit(c)
		}
	}
	visit(root)
	return nodes, leaves
}

// TestWarmOrder: Warm reads every node of a tree once, leaves in key
// order, skips the subtree of a node that is not resident, and stops when
// told to.
func TestWarmOrder(t *testing.T) {
	tr, root, birth := warmTree(t)
	nodes, leaves := treeNodes(t, tr, root)
	if len(nodes)-len(leaves) < 3 {
		t.Fatalf("%d nodes, %d of them leaves: want a tree of three levels", len(nodes), len(leaves))
	}
	var asked []page.ID
	all := func(id page.ID) bool { asked = append(asked, id); return true }
	never := func() bool { return false }
	if n := tr.Warm(page.Ref{Root: root, Birth: birth}, all, never); n != len(nodes) {
		t.Fatalf("Warm read %d nodes, the tree has %d", n, len(nodes))
	}
	if len(asked) != len(nodes) {
		t.Fatalf("Warm asked about %d pages, the tree has %d nodes", len(asked), len(nodes))
	}
	for i, id := range asked {
		if id != nodes[i] {
			t.Fatalf("page %d asked about is %d, want %d (depth first, in key order)", i, id, nodes[i])
		}
	}

	// A branch not resident: none of its subtree is read.
	rn, _ := tr.branchOrLeaf(root)
	skip, _ := page.BranchChild(rn, 1)
	sn, _ := tr.branchOrLeaf(skip)
	hidden := 1 + page.Count(sn)
	n := tr.Warm(page.Ref{Root: root, Birth: birth}, func(id page.ID) bool { return id != skip }, never)
	if n != len(nodes)-hidden {
		t.Fatalf("with branch %d (of %d children) not resident, Warm read %d nodes, want %d", skip, page.Count(sn), n, len(nodes)-hidden)
	}

	// Stopped after 10 questions.
	calls := 0
	n = tr.Warm(page.Ref{Root: root, Birth: birth}, func(page.ID) bool { return true }, func() bool { calls++; return calls > 10 })
	if n > 10*page.Count(sn) || n >= len(nodes) {
		t.Fatalf("told to stop at its 11th step, Warm read %d nodes of %d", n, len(nodes))
	}
}

// TestWarmDamaged: a tree whose branch points at pages that are no nodes,
// outside the file, or at itself ends the walk there, without a panic.
func TestWarmDamaged(t *testing.T) {
	tr, root, birth := warmTree(t)
	rn, _ := tr.branchOrLeaf(root)
	b, _ := page.BranchChild(rn, 0)
	bn, _ := tr.branchOrLeaf(b)
	eb := page.ElemBase(bn)
	for i, bad := range []page.ID{0, 1, page.ID(tr.PgCount), page.ID(tr.PgCount + 100), root, b, 1 << 60} {
		e := eb + i*page.BranchElementSize
		binary.LittleEndian.PutUint64(bn[e:], uint64(bad))
	}
	all := func(page.ID) bool { return true }
	n := tr.Warm(page.Ref{Root: root, Birth: birth, Nested: 1}, all, func() bool { return false })
	if n == 0 || uint64(n) > tr.PgCount {
		t.Fatalf("Warm of a damaged tree read %d nodes (file of %d pages)", n, tr.PgCount)
	}
}
