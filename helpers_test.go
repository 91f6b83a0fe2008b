package mapkv_test

import (
	"bytes"
	"fmt"
	"os"

	"github.com/mapkv/mapkv"
)

func mkdirTemp() (string, error) { return os.MkdirTemp("", "mapkv-bench-") }

// readGeneration reads every key of bucket "b" and checks that all carry
// the same generation, which it returns.
func readGeneration(tx *mapkv.Tx) (string, error) {
	b := tx.Bucket([]byte("b"))
	if b == nil {
		return "", fmt.Errorf("bucket missing at tx %d", tx.ID())
	}
	gen := ""
	n := 0
	for k, v := range b.All() {
		if len(v) < 8 {
			return "", fmt.Errorf("key %q: short value", k)
		}
		if gen == "" {
			gen = string(v[:8])
		} else if string(v[:8]) != gen {
			return "", fmt.Errorf("tx %d: key %q has generation %s, others %s", tx.ID(), k, v[:8], gen)
		}
		if !bytes.Equal(v[8:], bytes.Repeat([]byte{v[0]}, len(v)-8)) {
			return "", fmt.Errorf("tx %d: key %q: value damaged", tx.ID(), k)
		}
		n++
	}
	if err := tx.Err(); err != nil {
		return "", err
	}
	if n != 300 {
		return "", fmt.Errorf("tx %d: %d keys, want 300", tx.ID(), n)
	}
	return gen, nil
}

func writeGeneration(db *mapkv.DB, gen int) error {
	return db.Update(func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil {
			return err
		}
		g := fmt.Sprintf("%08d", gen)
		for i := 0; i < 300; i++ {
			// Values grow with the generation so the file grows too.
			v := append([]byte(g), bytes.Repeat([]byte{g[0]}, 50+(gen%40)*10+i%7)...)
			if err := b.Put([]byte(fmt.Sprintf("key%04d", i)), v); err != nil {
				return err
			}
		}
		return nil
	})
}
