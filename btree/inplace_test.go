package btree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mapkv/mapkv/page"
)

// bumpAlloc hands out pages from the end of its tree's buffer, never
// reusing one: two trees that start alike and take the same changes end
// alike, byte for byte.
type bumpAlloc struct {
	t     *Tree
	limit page.ID
	freed []page.Run // in the order Free was called
}

var errBumpFull = errors.New("bump: out of pages")

func (a *bumpAlloc) Alloc(n int) (page.ID, []byte, error) {
	id := page.ID(a.t.PgCount)
	if uint64(id)+uint64(n) > uint64(a.limit) {
		return 0, nil, errBumpFull
	}
	a.t.PgCount += uint64(n)
	ps := a.t.PageSize
	return id, a.t.Data[int(id)*ps : (int(id)+n)*ps], nil
}

func (a *bumpAlloc) Free(id page.ID, n int) {
	a.freed = append(a.freed, page.Run{Start: id, Len: uint64(n)})
}

func (a *bumpAlloc) Seal(_ page.ID, node []byte, _ int) { page.Seal(node) }

// putsAlloc is a bumpAlloc that is a PutsSealer: it builds every node it
// is told was put together from an old node and puts again with Rebuild
// (leaves built in place, branches told as puts), and fails the test
// unless that gives the same bytes and size.
type putsAlloc struct {
	*bumpAlloc
	tb       testing.TB
	txid     page.TxID
	rebuilt  int // leaves
	branches int
}

func (a *putsAlloc) SealPuts(id page.ID, node []byte, used int, base page.ID, old []byte, muts []Mutation) {
	a.tb.Helper()
	dst := make([]byte, len(node))
	got, err := Rebuild(dst, old, id, a.txid, slices.Clone(muts))
	if err != nil {
		a.tb.Fatalf("node %d from %d and %d puts: %v", id, base, len(muts), err)
	}
	if got != used || !bytes.Equal(dst, node) {
		a.tb.Fatalf("node %d rebuilt from %d and %d puts: %d bytes used, want %d; same bytes %v", id, base, len(muts), got, used, bytes.Equal(dst, node))
	}
	if page.NodeType(node) == page.TypeBranch {
		a.branches++
	} else {
		a.rebuilt++
	}
	a.Seal(id, node, used)
}

// TestInsertInPlaceSameBytes applies the same batches of changes to two
// trees, one with insertInPlace and one without (copyLeaves), and checks
// after every batch that the two files are the same bytes, that the two
// freed the same nodes in the same order, and at the end that the tree
// holds the model's pairs. The batches mix the changes insertInPlace takes (puts
// of short values inside a leaf's range, new keys and replaced values)
// with those it leaves to mergeLeaf (deletes, values that go to overflow
// nodes, keys past a leaf's range, leaves that split, nodes whose common
// prefix would change), over keys of random bytes and keys sharing long
// prefixes.
func TestInsertInPlaceSameBytes(t *testing.T) {
	sameBytes(t, randomBatch, 200, 20, 0, 0)
}

// TestPackAppendedSameBytes is TestInsertInPlaceSameBytes for packAppended: a
// load in key order, batches of keys after every key so far, with now and
// then a batch packAppended leaves to mergeLeaf (one with a value for an
// overflow node, one with a delete among the appended keys) and a random
// one.
func TestPackAppendedSameBytes(t *testing.T) {
	next := 0
	sameBytes(t, func(r *rand.Rand, ps int, known []string) []Mutation {
		if r.IntN(6) == 0 {
			return randomBatch(r, ps, known)
		}
		n := 1 + r.IntN(80)
		if r.IntN(8) == 0 {
			n = 1
		}
		muts := make([]Mutation, 0, n)
		for range n {
			next += 1 + r.IntN(3)
			m := Mutation{Key: fmt.Appendf(nil, "\xff\xffload/%08d", next), Value: make([]byte, r.IntN(150))}
			for i := range m.Value {
				m.Value[i] = byte(r.Uint32())
			}
			muts = append(muts, m)
		}
		switch r.IntN(12) {
		case 0:
			muts[r.IntN(n)].Value = bytes.Repeat([]byte{7}, ps) // an overflow node
		case 1:
			muts[r.IntN(n)].Delete = true
		}
		return muts
	}, 0, 0, 100, 400)
}

// TestPatchBranchSameBytes is TestInsertInPlaceSameBytes for patchBranch:
// after a load, batches of a few changes each under one child, mostly
// deletes of a run of neighbouring keys, which empty leaves until
// rebalance merges them with the neighbours on either side (and those
// with theirs), and puts that split leaves.
func TestPatchBranchSameBytes(t *testing.T) {
	sameBytes(t, func(r *rand.Rand, ps int, known []string) []Mutation {
		if len(known) < 2000 {
			var muts []Mutation
			for i := range 4000 {
				muts = append(muts, Mutation{Key: fmt.Appendf(nil, "key%06d", 10*i), Value: make([]byte, 20+i%40)})
			}
			return muts
		}
		at := r.IntN(40000)
		var muts []Mutation
		if r.IntN(4) == 0 {
			for j := range 1 + r.IntN(3) {
				muts = append(muts, Mutation{Key: fmt.Appendf(nil, "key%06d", at+j), Value: make([]byte, r.IntN(200))})
			}
			return muts
		}
		for j := range 1 + r.IntN(25) {
			muts = append(muts, Mutation{Key: fmt.Appendf(nil, "key%06d", at+10*j), Delete: true})
		}
		return muts
	}, 20, 200, 0, 1200)
}

// sameBytes applies batches from gen to two trees, one built with
// insertInPlace and patchBranch and one without, and compares them (see
// TestInsertInPlaceSameBytes); each path must have been taken at least
// min times (packAppended minAppended times). It stops when the trees'
// pages run out, or after maxBatches batches if that is not 0.
func sameBytes(t *testing.T, gen func(r *rand.Rand, ps int, known []string) []Mutation, minInPlace, minPatched, minAppended, maxBatches int) {
	for _, ps := range []int{1024, 4096} {
		t.Run(fmt.Sprint(ps), func(t *testing.T) {
			const pages = 12000
			r := rand.New(rand.NewPCG(uint64(ps), 7))
			mk := func() (*Tree, *bumpAlloc) {
				tr := &Tree{Data: make([]byte, pages*ps), PageSize: ps, PgCount: 2}
				return tr, &bumpAlloc{t: tr, limit: pages}
			}
			ta, aa := mk()
			tb, ab := mk()
			var root page.ID
			var birth page.TxID
			model := map[string]string{}
			var known []string
			inPlace, branchPuts, patched, appended, batches := 0, 0, 0, 0, 0
			for batch := 1; maxBatches == 0 || batch <= maxBatches; batch++ {
				muts := gen(r, ps, known)
				pa := &putsAlloc{bumpAlloc: aa, tb: t, txid: page.TxID(batch)}
				wa := &Writer{T: ta, A: pa, TxID: page.TxID(batch), TrustFrom: 1}
				copyLeaves, copyBranches = true, true
				wb := &Writer{T: tb, A: ab, TxID: page.TxID(batch)}
				rb, bb, errB := wb.Apply(root, birth, muts)
				copyLeaves, copyBranches = false, false
				ra, ba, errA := wa.Apply(root, birth, muts)
				if errors.Is(errA, errBumpFull) || errors.Is(errB, errBumpFull) {
					break
				}
				if errA != nil || errB != nil {
					t.Fatalf("batch %d: Apply: %v / without insertInPlace: %v", batch, errA, errB)
				}
				inPlace += wa.inPlace
				branchPuts += wa.branchPutsN
				patched += wa.patched
				appended += wa.appended
				if pa.rebuilt != wa.inPlace || pa.branches != wa.branchPutsN {
					t.Fatalf("batch %d: %d leaves built in place and %d branches told as puts, %d and %d told to SealPuts", batch, wa.inPlace, wa.branchPutsN, pa.rebuilt, pa.branches)
				}
				if wb.inPlace != 0 || wb.patched != 0 || wb.appended != 0 {
					t.Fatalf("copyLeaves and copyBranches did not turn insertInPlace, patchBranch and packAppended off")
				}
				if !slices.Equal(aa.freed, ab.freed) {
					t.Fatalf("batch %d: freed %v; without insertInPlace %v", batch, aa.freed, ab.freed)
				}
				aa.freed, ab.freed = aa.freed[:0], ab.freed[:0]
				if ra != rb || ba != bb || ta.PgCount != tb.PgCount {
					t.Fatalf("batch %d: root %d (birth %d, %d pages) against %d (%d, %d) without insertInPlace", batch, ra, ba, ta.PgCount, rb, bb, tb.PgCount)
				}
				if !bytes.Equal(ta.Data[:ta.PgCount*uint64(ps)], tb.Data[:tb.PgCount*uint64(ps)]) {
					for p := uint64(2); p < ta.PgCount; p++ {
						a, b := ta.Data[p*uint64(ps):(p+1)*uint64(ps)], tb.Data[p*uint64(ps):(p+1)*uint64(ps)]
						if !bytes.Equal(a, b) {
							t.Fatalf("batch %d: page %d differs from the one built without insertInPlace:\n%x\n%x", batch, p, a[:96], b[:96])
						}
					}
				}
				root, birth = ra, ba
				for _, m := range muts {
					if m.Delete {
						delete(model, string(m.Key))
					} else {
						if _, ok := model[string(m.Key)]; !ok {
							known = append(known, string(m.Key))
						}
						model[string(m.Key)] = string(m.Value)
					}
				}
				batches++
			}
			if batches < 20 || inPlace < minInPlace || branchPuts < 20 || patched < minPatched || appended < minAppended {
				t.Fatalf("%d batches, %d leaves changed in place, %d branches told as puts, %d patched, %d appended to: too few to compare", batches, inPlace, branchPuts, patched, appended)
			}
			keys, vals, err := walk(ta, root)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != len(model) {
				t.Fatalf("tree holds %d keys, model %d", len(keys), len(model))
			}
			for i, k := range keys {
				if v, ok := model[string(k)]; !ok || v != string(vals[i]) {
					t.Fatalf("key %q: value %d bytes, model %d (present %v)", k, len(vals[i]), len(v), ok)
				}
			}
			t.Logf("%d batches, %d leaves changed in place, %d branches told as puts, %d patched, %d appended to, %d keys", batches, inPlace, branchPuts, patched, appended, len(keys))
		})
	}
}

// randomBatch returns sorted changes, one per key: mostly puts of 16-byte
// random keys with short values, and some of every other kind.
func randomBatch(r *rand.Rand, ps int, known []string) []Mutation {
	byKey := map[string]Mutation{}
	n := 1 + r.IntN(200)
	if r.IntN(8) == 0 {
		n = 1 + r.IntN(4) // a few keys: in place whenever they land inside leaves
	}
	for range n {
		var k []byte
		switch x := r.IntN(20); {
		case x < 12 || len(known) == 0:
			k = make([]byte, 16)
			for i := range k {
				k[i] = byte(r.Uint32())
			}
		case x < 15:
			k = []byte(known[r.IntN(len(known))]) // replace or delete
		case x < 18:
			// Keys sharing a long prefix: nodes with a common prefix.
			k = fmt.Appendf(nil, "shared/prefix/%06d", r.IntN(5000))
			k = k[:len(k)-r.IntN(3)]
		default:
			k = make([]byte, 1+r.IntN(3)) // short keys
			for i := range k {
				k[i] = byte(r.Uint32())
			}
		}
		m := Mutation{Key: k}
		switch x := r.IntN(40); {
		case x == 0:
			m.Value = bytes.Repeat([]byte{byte(x)}, ps) // an overflow node
		case x < 3:
			m.Delete = true
		case x < 5:
			m.Value = nil
		default:
			m.Value = make([]byte, r.IntN(120))
			for i := range m.Value {
				m.Value[i] = byte(r.Uint32())
			}
		}
		byKey[string(k)] = m
	}
	out := make([]Mutation, 0, len(byKey))
	for _, m := range byKey {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Mutation) int { return bytes.Compare(a.Key, b.Key) })
	return out
}

// TestRebuildInPlaceRefuses: RebuildInPlace refuses, with an error and
// without panicking, puts that the in-place path would not take (a replay
// hands it whatever a damaged log holds), and takes those it would.
func TestRebuildInPlaceRefuses(t *testing.T) {
	const ps = 1024
	tr := &Tree{Data: make([]byte, 64*ps), PageSize: ps, PgCount: 2}
	a := &bumpAlloc{t: tr, limit: 64}
	var muts []Mutation
	for i := range 8 {
		muts = append(muts, Mutation{Key: fmt.Appendf(nil, "key%03d", i*10), Value: []byte("value")})
	}
	root, _, err := (&Writer{T: tr, A: a, TxID: 1}).Apply(0, 0, muts)
	if err != nil {
		t.Fatal(err)
	}
	old := tr.Data[int(root)*ps : int(root+1)*ps]
	put := func(k string) Mutation { return Mutation{Key: []byte(k), Value: []byte("v")} }
	dst := make([]byte, ps)
	if _, err := RebuildInPlace(dst, old, 9, 2, []Mutation{put("key005"), put("key015")}); err != nil {
		t.Fatalf("two puts inside the range: %v", err)
	}
	garbage := make([]byte, ps)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	for name, c := range map[string]struct {
		old  []byte
		dst  []byte
		muts []Mutation
	}{
		"descending":       {old, dst, []Mutation{put("key015"), put("key005")}},
		"duplicate":        {old, dst, []Mutation{put("key005"), put("key005")}},
		"before the first": {old, dst, []Mutation{put("a")}},
		"past the last":    {old, dst, []Mutation{put("z")}},
		"delete":           {old, dst, []Mutation{{Key: []byte("key010"), Delete: true}}},
		"flags":            {old, dst, []Mutation{{Key: []byte("key015"), Value: []byte("v"), Flags: 1}}},
		"too large":        {old, dst, []Mutation{{Key: []byte("key015"), Value: make([]byte, 900)}}},
		"none":             {old, dst, nil},
		"short page":       {old, dst[:ps/2], []Mutation{put("key005")}},
		"garbage node":     {garbage, dst, []Mutation{put("key005")}},
		"zero node":        {make([]byte, ps), dst, []Mutation{put("key005")}},
	} {
		if _, err := RebuildInPlace(c.dst, c.old, 9, 2, c.muts); err == nil {
			t.Errorf("%s: RebuildInPlace took it", name)
		}
	}
}

// TestRebuildBranchRefuses: RebuildBranch builds the branch packBranches
// builds for the children puts leave, and refuses, with an error and
// without panicking, puts that make no such branch (a replay hands it
// whatever a damaged log holds).
func TestRebuildBranchRefuses(t *testing.T) {
	const ps = 1024
	tr := &Tree{Data: make([]byte, 64*ps), PageSize: ps, PgCount: 2}
	w := &Writer{T: tr, A: &bumpAlloc{t: tr, limit: 64}, TxID: 1}
	w.getScratch()
	defer w.putScratch()
	var kids []child
	for i := range 8 {
		kids = append(kids, child{key: fmt.Appendf(nil, "key%03d", i*10), id: page.ID(100 + i), birth: 1})
	}
	out, err := w.packBranches(nil, kids, false, nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("packBranches: %v, %d nodes", err, len(out))
	}
	old := tr.Data[int(out[0].id)*ps : int(out[0].id+1)*ps]
	ref := func(id page.ID) []byte {
		return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, uint64(id)), 7)
	}
	put := func(k string, id page.ID) Mutation { return Mutation{Key: []byte(k), Value: ref(id)} }
	del := func(k string) Mutation { return Mutation{Key: []byte(k), Delete: true} }

	// Replace key010's child, add key015 and a first key, drop key070
	// (a log's delete: an empty value): the branch packBranches builds.
	muts := []Mutation{put("a", 50), put("key010", 51), put("key015", 52), {Key: []byte("key070")}}
	want := []child{{key: []byte("a"), id: 50, birth: 7}, kids[0], {key: []byte("key010"), id: 51, birth: 7}, {key: []byte("key015"), id: 52, birth: 7}}
	want = append(want, kids[2:7]...)
	w2 := &Writer{T: tr, A: &bumpAlloc{t: tr, limit: 64}, TxID: 2}
	built, err := w2.packBranches(nil, want, false, nil)
	if err != nil || len(built) != 1 {
		t.Fatalf("packBranches: %v, %d nodes", err, len(built))
	}
	wantNode := tr.Data[int(built[0].id)*ps : int(built[0].id+1)*ps]
	dst := make([]byte, ps)
	used, err := RebuildBranch(dst, old, built[0].id, 2, muts)
	if err != nil {
		t.Fatalf("RebuildBranch: %v", err)
	}
	page.Seal(dst)
	if used != built[0].size || !bytes.Equal(dst, wantNode) {
		t.Fatalf("rebuilt %d bytes used (want %d), same bytes %v", used, built[0].size, bytes.Equal(dst, wantNode))
	}

	garbage := make([]byte, ps)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	lroot, _, err := (&Writer{T: tr, A: &bumpAlloc{t: tr, limit: 64}, TxID: 3}).Apply(0, 0, []Mutation{{Key: []byte("key010"), Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	leaf := tr.Data[int(lroot)*ps : int(lroot+1)*ps]
	var many []Mutation
	for i := range 40 {
		many = append(many, put(fmt.Sprintf("key%03d-%s", i, bytes.Repeat([]byte("x"), 20)), page.ID(200+i)))
	}
	for name, c := range map[string]struct {
		old  []byte
		dst  []byte
		muts []Mutation
	}{
		"descending":     {old, dst, []Mutation{put("key015", 1), put("key005", 2)}},
		"duplicate":      {old, dst, []Mutation{put("key015", 1), put("key015", 2)}},
		"no such child":  {old, dst, []Mutation{del("key015")}},
		"short ref":      {old, dst, []Mutation{{Key: []byte("key015"), Value: []byte("v")}}},
		"all deleted":    {old, dst, []Mutation{del("key000"), del("key010"), del("key020"), del("key030"), del("key040"), del("key050"), del("key060"), del("key070")}},
		"past one page":  {old, dst, many},
		"short page":     {old, dst[:ps/2], []Mutation{put("key015", 1)}},
		"garbage node":   {garbage, dst, []Mutation{put("key015", 1)}},
		"zero node":      {make([]byte, ps), dst, []Mutation{put("key015", 1)}},
		"a leaf for old": {leaf, dst, []Mutation{put("key015", 1)}},
	} {
		if _, err := RebuildBranch(c.dst, c.old, 9, 2, c.muts); err == nil {
			t.Errorf("%s: RebuildBranch took it", name)
		}
	}
}
