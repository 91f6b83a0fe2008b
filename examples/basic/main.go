// Command basic creates a mapkv database, fills it, reads it back, reopens
// it and checks it, printing what it does. Run it with
//
//	go run ./examples/basic [path]
package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/mapkv/mapkv"
)

func main() {
	path := filepath.Join(os.TempDir(), "mapkv-example.db")
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	os.Remove(path)
	db, err := mapkv.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("created %s\n", path)

	const n = 100_000
	start := time.Now()
	for i := 0; i < n; i += 10_000 {
		err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("users"))
			if err != nil {
				return err
			}
			for j := i; j < i+10_000; j++ {
				if err := b.Put([]byte(fmt.Sprintf("user%06d", j)), []byte(fmt.Sprintf("payload of user %d", j))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("wrote %d keys in %d synced transactions in %v\n", n, n/10_000, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	err = db.View(func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("users"))
		for i := 0; i < n; i++ {
			if b.Get([]byte(fmt.Sprintf("user%06d", i))) == nil {
				return fmt.Errorf("user%06d missing", i)
			}
		}
		fmt.Printf("read them back in %v; user042000 = %q\n", time.Since(start).Round(time.Millisecond), b.Get([]byte("user042000")))
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := db.Close(); err != nil {
		log.Fatal(err)
	}

	db, err = mapkv.Open(path, &mapkv.Options{ReadOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("users"))
		count := 0
		for range b.Range([]byte("user010000"), []byte("user010100")) {
			count++
		}
		st := b.Stats()
		fmt.Printf("reopened at txid %d: %d keys, tree depth %d, %d leaf pages; range [user010000, user010100) holds %d keys\n",
			tx.ID(), st.KeyN, st.Depth, st.LeafPageN, count)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := db.Check(); err != nil {
		log.Fatal(err)
	}
	s := db.Stats()
	fmt.Printf("check: clean; file %d bytes, %d pages of %d bytes, %d free\n", s.FileSize, s.PageCount, s.PageSize, s.FreePageN)
}
