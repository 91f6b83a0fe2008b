package mapkv

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mapkv/mapkv/page"
)

// TestFreelistRelease checks release against a set of pages: after
// random frees (pending under random txids), releases and allocations,
// the free set holds exactly the pages expected, in coalesced runs, and
// counts them right. All three ways of releasing run: run by run into a
// large set, the rebuild when the runs released outnumber the set's, and
// a set built ahead (prepare), whether something changed the list before
// the release or not.
func TestFreelistRelease(t *testing.T) {
	prepared := 0
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 7))
		f := newFreelist(4096)
		const pages = 3000
		state := make([]byte, pages) // 0 used, 1 free, 2 pending
		pendTx := make([]page.TxID, pages)
		for range 200 {
			switch r.IntN(4) {
			case 0: // free some used runs under a txid
				tx := page.TxID(1 + r.IntN(10))
				for range r.IntN(300) {
					start := r.IntN(pages)
					n := 1 + r.IntN(4)
					if start+n > pages {
						continue
					}
					ok := true
					for p := start; p < start+n; p++ {
						ok = ok && state[p] == 0
					}
					if !ok {
						continue
					}
					for p := start; p < start+n; p++ {
						state[p], pendTx[p] = 2, tx
					}
					f.addPending(tx, page.Run{Start: page.ID(start), Len: uint64(n)})
				}
			case 1: // release up to a txid
				upTo := page.TxID(r.IntN(11))
				f.release(upTo)
				for p := range state {
					if state[p] == 2 && pendTx[p] <= upTo {
						state[p] = 1
					}
				}
			case 3: // release all but one txid's pages, prepare that one's
				upTo := page.TxID(r.IntN(10))
				f.release(upTo)
				for p := range state {
					if state[p] == 2 && pendTx[p] <= upTo {
						state[p] = 1
					}
				}
				f.prepare(upTo + 1)
				if f.prep == nil {
					break
				}
				if r.IntN(2) == 0 { // a change in between: prep is stale
					n := uint64(1 + r.IntN(3))
					if id, ok := f.alloc(n); ok {
						for p := id; p < id+page.ID(n); p++ {
							state[p] = 0
						}
					}
				} else {
					prepared++
				}
				upTo++
				f.release(upTo)
				for p := range state {
					if state[p] == 2 && pendTx[p] <= upTo {
						state[p] = 1
					}
				}
			case 2: // allocate
				for range r.IntN(200) {
					n := uint64(1 + r.IntN(3))
					id, ok := f.alloc(n)
					if !ok {
						break
					}
					for p := id; p < id+page.ID(n); p++ {
						if state[p] != 1 {
							t.Fatalf("seed %d: allocated page %d that is not free", seed, p)
						}
						state[p] = 0
					}
				}
			}
			var want []page.Run
			var nfree uint64
			for p := range state {
				if state[p] != 1 {
					continue
				}
				nfree++
				if n := len(want); n > 0 && want[n-1].End() == page.ID(p) {
					want[n-1].Len++
				} else {
					want = append(want, page.Run{Start: page.ID(p), Len: 1})
				}
			}
			var got []page.Run
			f.free.Ascend(func(r page.Run) bool {
				got = append(got, r)
				return true
			})
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d: free runs\n got %v\nwant %v", seed, got, want)
			}
			if f.nfree != nfree {
				t.Fatalf("seed %d: nfree %d, want %d", seed, f.nfree, nfree)
			}
		}
	}
	if prepared < 50 {
		t.Fatalf("a prepared set was released unchanged %d times: the test no longer covers it", prepared)
	}
}

// TestHoldSplits: hold takes one page out of the pending run that holds
// it, whichever part of the run it is, keeps the rest pending for the
// same transaction, and unhold makes the held pages pending again.
func TestHoldSplits(t *testing.T) {
	f := newFreelist(4096)
	f.addPending(7, page.Run{Start: 10, Len: 5}) // 10..14
	f.addPending(7, page.Run{Start: 20, Len: 1})
	for _, id := range []page.ID{12, 10, 14, 20} { // middle, start, end, alone
		if !f.holds(7, id) {
			t.Fatalf("page %d: not pending for tx 7", id)
		}
		f.hold(7, id)
		if f.holds(7, id) {
			t.Fatalf("page %d still pending after hold", id)
		}
	}
	if got, want := f.pending[7], []page.Run{{Start: 11, Len: 1}, {Start: 13, Len: 1}}; !slices.Equal(got, want) {
		t.Fatalf("pending after the holds: %v, want %v", got, want)
	}
	if f.nheld != 4 || f.pendingCount() != 6 {
		t.Fatalf("%d held, %d pending or held; want 4 and 6", f.nheld, f.pendingCount())
	}
	if f.holds(7, 30) || f.holds(8, 11) {
		t.Fatal("holds reports a page that is not pending for that tx")
	}
	f.unhold(9)
	if f.nheld != 0 || len(f.held) != 0 || len(f.pending[9]) != 4 || f.pendingCount() != 6 {
		t.Fatalf("after unhold: %d held, pending[9] %v, %d pending", f.nheld, f.pending[9], f.pendingCount())
	}
}
