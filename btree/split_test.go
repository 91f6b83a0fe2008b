package btree

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/mapkv/mapkv/page"
)

// splitPages is the store behind splitAlloc: pages are handed out once
// (never reused) from a buffer that nodes are copied into at commit.
type splitPages struct {
	mu      sync.Mutex
	data    []byte
	next    page.ID
	limit   page.ID
	freed   map[page.ID]bool
	double  []page.ID
	badTail []page.ID // sealed with bytes past used that are not zero
	forks   int
}

// splitAlloc is an Alloc and Forker like the root package's: nodes are
// built in memory and found through the view's Fresh map until commit;
// a fork has a map and a view of its own, merged at Join.
type splitAlloc struct {
	p    *splitPages
	view *Tree
	own  map[page.ID][]byte // view.Fresh
}

func newSplitAlloc(pages int) *splitAlloc {
	t := &Tree{Data: make([]byte, pages*fuzzPS), PageSize: fuzzPS, PgCount: uint64(pages)}
	return splitAllocOver(t, 2, page.ID(pages))
}

// splitAllocOver allocates pages [next, limit) of t, which becomes the
// allocator's view (its Fresh map set).
func splitAllocOver(t *Tree, next, limit page.ID) *splitAlloc {
	p := &splitPages{data: t.Data, next: next, limit: limit, freed: map[page.ID]bool{}}
	own := map[page.ID][]byte{}
	t.Fresh = own
	return &splitAlloc{p: p, view: t, own: own}
}

func (a *splitAlloc) Alloc(n int) (page.ID, []byte, error) {
	a.p.mu.Lock()
	id := a.p.next
	if n <= 0 || uint64(id)+uint64(n) > uint64(a.p.limit) {
		a.p.mu.Unlock()
		return 0, nil, errFuzzFull
	}
	a.p.next += page.ID(n)
	a.p.mu.Unlock()
	a.view.PgCount = max(a.view.PgCount, uint64(id)+uint64(n))
	buf := make([]byte, n*fuzzPS)
	a.own[id] = buf
	return id, buf, nil
}

func (a *splitAlloc) Free(id page.ID, n int) {
	if _, ok := a.own[id]; ok {
		delete(a.own, id)
		return
	}
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	if a.p.freed[id] {
		a.p.double = append(a.p.double, id)
	}
	a.p.freed[id] = true
}

func (a *splitAlloc) Seal(id page.ID, node []byte, used int) {
	page.Seal(node)
	if slices.ContainsFunc(node[used:], func(b byte) bool { return b != 0 }) {
		a.p.mu.Lock()
		a.p.badTail = append(a.p.badTail, id)
		a.p.mu.Unlock()
	}
}

func (a *splitAlloc) Fork() (Alloc, *Tree) {
	a.p.forks++
	own := map[page.ID][]byte{}
	v := *a.view
	v.Fresh = own
	return &splitAlloc{p: a.p, view: &v, own: own}, &v
}

func (a *splitAlloc) Join(fa Alloc) error {
	f := fa.(*splitAlloc)
	for id, b := range f.own {
		if _, ok := a.own[id]; ok {
			return fmt.Errorf("page %d built by both halves", id)
		}
		a.own[id] = b
	}
	a.view.PgCount = max(a.view.PgCount, f.view.PgCount)
	return nil
}

// commit copies the nodes built into the pages.
func (a *splitAlloc) commit() {
	for id, b := range a.own {
		copy(a.p.data[int(id)*fuzzPS:], b)
	}
	clear(a.own)
}

// TestApplySplit merges large random batches into a tree of several
// levels with Parallel low enough that branches split between two
// goroutines, and checks every result against a model: well formed, the
// same keys and values, no page freed twice or freed while still in the
// tree, and nothing but zeros past what Seal was told was used. Under
// -race it also checks that the two halves share nothing unguarded.
func TestApplySplit(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	a := newSplitAlloc(24000)
	model := map[string]string{}
	key := func() []byte { return fmt.Appendf(nil, "k%08d", r.IntN(60000)) }
	val := func() []byte { return bytes.Repeat([]byte{byte('a' + r.IntN(26))}, 1+r.IntN(40)) }

	var root page.ID
	var birth page.TxID
	for round := 0; round < 8; round++ {
		byKey := map[string]Mutation{}
		n := 200 + r.IntN(3000)
		if round == 0 {
			n = 15000
		}
		for range n {
			k := key()
			m := Mutation{Key: k, Value: val()}
			if round > 0 && r.IntN(4) == 0 {
				m = Mutation{Key: k, Delete: true}
			}
			byKey[string(k)] = m
		}
		muts := make([]Mutation, 0, len(byKey))
		for _, m := range byKey {
			muts = append(muts, m)
		}
		slices.SortFunc(muts, func(x, y Mutation) int { return bytes.Compare(x.Key, y.Key) })

		w := &Writer{T: a.view, A: a, TxID: birth + 1, Parallel: 32}
		var err error
		if root, birth, err = w.Apply(root, birth, muts); err != nil {
			t.Fatalf("round %d: Apply: %v", round, err)
		}
		a.commit()
		mergeModel(model, muts)
		if len(a.p.double) > 0 || len(a.p.badTail) > 0 {
			t.Fatalf("round %d: pages freed twice %v, sealed with a dirty tail %v", round, a.p.double, a.p.badTail)
		}
		checkApplied(t, fmt.Sprintf("round %d", round), a.view, root, birth, model)
		var c Cursor
		c.Reset(a.view, root)
		for ok := c.First(); ok; ok = c.Next() {
			for d := 0; d < c.depth; d++ {
				if id := page.PageID(c.stack[d].node); a.p.freed[id] {
					t.Fatalf("round %d: page %d is in the tree and was freed", round, id)
				}
			}
		}
	}
	if a.p.forks == 0 {
		t.Fatal("no merge was split: the test does not test splitting")
	}
	t.Logf("%d splits, %d pages", a.p.forks, a.p.next)
}

// fuzzSplit is FuzzTree's Apply again, on a fresh image of data, with
// the merge split between two goroutines wherever a branch has two
// children with changes (Parallel 2): on any input it must not panic or
// hang, and on a well-formed tree (model holds its pairs) it must give
// the model merged with muts, well formed, without freeing a page twice.
func fuzzSplit(t *testing.T, data []byte, muts []Mutation, valid bool, model map[string]string) {
	tr, root, birth := fuzzImage(data)
	a := splitAllocOver(tr, page.ID(tr.PgCount), page.ID(tr.PgCount)+fuzzSpare)
	w := &Writer{T: tr, A: a, TxID: birth + 1, Parallel: 2}
	newRoot, newBirth, err := w.Apply(root, birth, muts)
	a.commit()
	tr.Fresh = nil
	if !valid || errors.Is(err, errFuzzFull) {
		return
	}
	if err != nil {
		t.Fatalf("split Apply on a well-formed tree: %v", err)
	}
	if len(a.p.double) > 0 || len(a.p.badTail) > 0 {
		t.Fatalf("split Apply freed pages %v twice, sealed %v with a dirty tail", a.p.double, a.p.badTail)
	}
	want := maps.Clone(model)
	mergeModel(want, muts)
	checkApplied(t, "split Apply", tr, newRoot, newBirth, want)
}

// TestMiddleInsertsSpreadBranches: a tree loaded in key order fills its
// branches nearly to capacity (appendSlack), as sequential inserts should;
// a batch of inserts in the middle of its key range that overflows a
// branch splits it into even halves, not into a full branch and a sliver
// (which would split again at the next insert).
func TestMiddleInsertsSpreadBranches(t *testing.T) {
	a := newSplitAlloc(30000)
	var root page.ID
	var birth page.TxID
	key := func(i int) []byte { return fmt.Appendf(nil, "k%08d", i) }
	val := bytes.Repeat([]byte("v"), 20)
	apply := func(muts []Mutation) {
		t.Helper()
		w := &Writer{T: a.view, A: a, TxID: birth + 1}
		var err error
		if root, birth, err = w.Apply(root, birth, muts); err != nil {
			t.Fatal(err)
		}
		a.commit()
	}
	for b := range 20 {
		var muts []Mutation
		for i := b * 1000; i < (b+1)*1000; i++ {
			muts = append(muts, Mutation{Key: key(i * 10), Value: val})
		}
		apply(muts)
	}
	// Keys between the loaded ones, under one branch in the middle.
	var muts []Mutation
	for i := 10000; i < 10400; i++ {
		for d := 1; d <= 4; d++ {
			muts = append(muts, Mutation{Key: key(i*10 + d), Value: val})
		}
	}
	apply(muts)
	// The branches just above the leaves: their children, and which of
	// them this last commit wrote.
	var fresh []int
	most := 0
	var visit func(id page.ID)
	visit = func(id page.ID) {
		n, err := a.view.Node(id)
		if err != nil {
			t.Fatal(err)
		}
		if page.NodeType(n) != page.TypeBranch {
			return
		}
		c0, _ := page.BranchChild(n, 0)
		k, err := a.view.Node(c0)
		if err != nil {
			t.Fatal(err)
		}
		if page.NodeType(k) == page.TypeLeaf {
			most = max(most, page.Count(n))
			if page.Birth(n) == birth {
				fresh = append(fresh, page.Count(n))
			}
			return
		}
		for i := range page.Count(n) {
			c, _ := page.BranchChild(n, i)
			visit(c)
		}
	}
	visit(root)
	if len(fresh) < 2 {
		t.Fatalf("the middle inserts rewrote %d branches above the leaves, want a split (at least 2)", len(fresh))
	}
	// Spread evenly they hold about three quarters of the fullest's
	// children each; a full branch and a sliver, half or less.
	for _, c := range fresh {
		if c*5 < most*3 {
			t.Fatalf("branches above the leaves written by the middle inserts have %v children (the fullest branch %d): a split left a sliver", fresh, most)
		}
	}
	t.Logf("branches written by the middle inserts: %v children; fullest %d", fresh, most)
}
