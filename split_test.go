package mapkv_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapkv/mapkv"
)

// TestSplitMerge commits random puts and deletes in batches large enough
// that their merges are split between two goroutines (the tests lower
// the threshold: export_test.go), through the log and around it, and
// checks the database against the model (and Check) after every commit
// and after reopening.
func TestSplitMerge(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts mapkv.Options
	}{
		{"log", mapkv.Options{PageSize: 1024}},
		{"direct", mapkv.Options{PageSize: 1024, WALSize: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			opts := tc.opts
			db := mustOpen(t, path, &opts)
			r := rand.New(rand.NewPCG(3, 5))
			m := newRelBucket()
			for round := 0; round < 12; round++ {
				ops := []relOp{{kind: relCreate, path: []string{"b"}}}
				for range 500 + r.IntN(4000) {
					op := relOp{kind: relPut, path: []string{"b"}, key: fmt.Sprintf("key-%07d", r.IntN(40000))}
					if round > 0 && r.IntN(5) == 0 {
						op.kind = relDel
					} else {
						op.val = strings.Repeat(string(rune('a'+r.IntN(26))), 1+r.IntN(120))
					}
					ops = append(ops, op)
				}
				if err := relCommit(db, m, ops); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				relExpect(t, db, m, fmt.Sprintf("round %d", round))
			}
			if mapkv.SplitsForTest(db) == 0 {
				t.Fatal("no merge was split: the test does not test splitting")
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = mustOpen(t, path, &opts)
			defer db.Close()
			relExpect(t, db, m, "after reopening")
		})
	}
}
