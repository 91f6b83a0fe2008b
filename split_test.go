package mapkv_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mapkv/mapkv"
)

// TestSplitMerge commits random puts and deletes in batches large enough
// that their merges are split between two goroutines (the tests lower
// the threshold: export_test.go), through the log and around it, and
// checks the database against a model after every commit, with Check,
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
			model := map[string][]byte{}
			for round := 0; round < 12; round++ {
				err := db.Update(func(tx *mapkv.Tx) error {
					b, err := tx.CreateBucketIfNotExists([]byte("b"))
					if err != nil {
						return err
					}
					for range 500 + r.IntN(4000) {
						k := fmt.Appendf(nil, "key-%07d", r.IntN(40000))
						if round > 0 && r.IntN(5) == 0 {
							delete(model, string(k))
							if err := b.Delete(k); err != nil {
								return err
							}
							continue
						}
						v := bytes.Repeat([]byte{byte(r.Uint32())}, 1+r.IntN(120))
						model[string(k)] = v
						if err := b.Put(k, v); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				checkModel(t, db, model)
			}
			if mapkv.SplitsForTest(db) == 0 {
				t.Fatal("no merge was split: the test does not test splitting")
			}
			if err := db.Check(); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = mustOpen(t, path, &opts)
			defer db.Close()
			checkModel(t, db, model)
			if err := db.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkModel compares bucket "b" of db with model, both ways.
func checkModel(t *testing.T, db *mapkv.DB, model map[string][]byte) {
	t.Helper()
	err := db.View(func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("b"))
		n := 0
		err := b.ForEach(func(k, v []byte) error {
			n++
			if want, ok := model[string(k)]; !ok || !bytes.Equal(v, want) {
				return fmt.Errorf("key %q: %d bytes, model %d (present %v)", k, len(v), len(want), ok)
			}
			return nil
		})
		if err == nil && n != len(model) {
			err = fmt.Errorf("%d keys, model %d", n, len(model))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
