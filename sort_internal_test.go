package mapkv

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mapkv/mapkv/page"
)

// TestSortChanges compares sortChanges with a plain sort by key, then
// arrival, on logs of keys that share long prefixes, are shorter than
// eight bytes, end in zero bytes or repeat (each change told apart by its
// seq and value); a quarter of the logs are long enough for the radix
// sort.
func TestSortChanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{0, 1, 'a', 0xff}
	for range 2000 {
		n := rng.IntN(200)
		if rng.IntN(4) == 0 {
			n = radixMin + rng.IntN(2000)
		}
		log := make([]change, n)
		for i := range log {
			k := make([]byte, rng.IntN(12))
			for j := range k {
				k[j] = alphabet[rng.IntN(len(alphabet))]
			}
			log[i] = change{Key: k, Value: []byte{byte(i), byte(i >> 8)}, Seq: uint32(rng.IntN(n + 1))}
		}
		want := slices.Clone(log)
		slices.SortStableFunc(want, func(a, b change) int {
			if c := bytes.Compare(a.Key, b.Key); c != 0 {
				return c
			}
			return cmp.Compare(a.Seq, b.Seq)
		})
		got := slices.Clone(log)
		sortChanges(got)
		for i := range want {
			if !bytes.Equal(got[i].Key, want[i].Key) || got[i].Seq != want[i].Seq {
				t.Fatalf("n=%d: at %d got key %x seq %d, want key %x seq %d", n, i, got[i].Key, got[i].Seq, want[i].Key, want[i].Seq)
			}
		}
		// Every change is still there once (values tell them apart).
		seen := make([]bool, n)
		for _, c := range got {
			i := int(c.Value[0]) | int(c.Value[1])<<8
			if seen[i] {
				t.Fatalf("n=%d: change %d twice", n, i)
			}
			seen[i] = true
		}
	}
}

// TestSortNodes compares sortNodes with a stable sort by page on sets of
// page IDs that are small, clustered, spread over the whole 64 bits, or
// repeat; each node's bytes must stay with its ID.
func TestSortNodes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	gens := map[string]func() page.ID{
		"small":    func() page.ID { return page.ID(2 + r.IntN(60000)) },
		"high":     func() page.ID { return page.ID(1<<40 + r.Uint64N(1<<20)) },
		"wide":     func() page.ID { return page.ID(r.Uint64()) },
		"repeats":  func() page.ID { return page.ID(r.IntN(50)) << 16 },
		"one byte": func() page.ID { return page.ID(r.IntN(256)) << 24 },
	}
	for name, gen := range gens {
		for _, n := range []int{0, 1, 255, 256, 257, 7500, 20000} {
			ns := make([]idBuf, n)
			for i := range ns {
				ns[i] = idBuf{gen(), []byte(fmt.Sprint(i))}
			}
			want := slices.Clone(ns)
			slices.SortStableFunc(want, func(a, b idBuf) int { return cmp.Compare(a.id, b.id) })
			sortNodes(ns)
			for i := range ns {
				if ns[i].id != want[i].id || (n >= 256 && string(ns[i].buf) != string(want[i].buf)) {
					t.Fatalf("%s, %d nodes: at %d got %d (%s), want %d (%s)", name, n, i, ns[i].id, ns[i].buf, want[i].id, want[i].buf)
				}
			}
		}
	}
}

// BenchmarkSortNodes sorts the page IDs of a 10,000-key random commit:
// 7,500 scattered below 55,000.
func BenchmarkSortNodes(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	src := make([]idBuf, 7500)
	for i := range src {
		src[i].id = page.ID(2 + r.IntN(55000))
	}
	ns := make([]idBuf, len(src))
	for b.Loop() {
		copy(ns, src)
		sortNodes(ns)
	}
}

// BenchmarkSortChanges sorts a load's commit: 10,000 changes of random
// 16-byte keys.
func BenchmarkSortChanges(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	src := make([]change, 10000)
	for i := range src {
		k := make([]byte, 16)
		for j := range k {
			k[j] = byte(r.Uint32())
		}
		src[i] = change{Key: k, Seq: uint32(i)}
	}
	log := make([]change, len(src))
	for b.Loop() {
		copy(log, src)
		sortChanges(log)
	}
}
