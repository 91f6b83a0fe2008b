package mapkv_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"

	"github.com/mapkv/mapkv"
)

func exampleDB() (*mapkv.DB, func()) {
	dir, err := os.MkdirTemp("", "mapkv-example-")
	if err != nil {
		log.Fatal(err)
	}
	db, err := mapkv.Open(filepath.Join(dir, "example.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }
}

func Example() {
	db, cleanup := exampleDB()
	defer cleanup()

	err := db.Update(func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("colors"))
		if err != nil {
			return err
		}
		return b.Put([]byte("sky"), []byte("blue"))
	})
	if err != nil {
		log.Fatal(err)
	}
	err = db.View(func(tx *mapkv.Tx) error {
		// The value points into the read-only mapping: use it here only.
		fmt.Printf("sky is %s\n", tx.Bucket([]byte("colors")).Get([]byte("sky")))
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output: sky is blue
}

func ExampleCursor() {
	db, cleanup := exampleDB()
	defer cleanup()
	db.Update(func(tx *mapkv.Tx) error {
		b, _ := tx.CreateBucket([]byte("fruit"))
		for _, k := range []string{"banana", "apple", "cherry", "apricot"} {
			b.Put([]byte(k), []byte("yes"))
		}
		return nil
	})
	db.View(func(tx *mapkv.Tx) error {
		c := tx.Bucket([]byte("fruit")).Cursor()
		for k, _ := c.Seek([]byte("ap")); k != nil && k[0] == 'a'; k, _ = c.Next() {
			fmt.Println(string(k))
		}
		k, _ := c.Last()
		fmt.Println("last:", string(k))
		return nil
	})
	// Output:
	// apple
	// apricot
	// last: cherry
}

func ExampleBucket_Range() {
	db, cleanup := exampleDB()
	defer cleanup()
	db.Update(func(tx *mapkv.Tx) error {
		b, _ := tx.CreateBucket([]byte("log"))
		for i := 1; i <= 5; i++ {
			b.Put([]byte(fmt.Sprintf("2026-11-%02d", i)), []byte(fmt.Sprint(i*10)))
		}
		return nil
	})
	db.View(func(tx *mapkv.Tx) error {
		for k, v := range tx.Bucket([]byte("log")).Range([]byte("2026-11-02"), []byte("2026-11-04")) {
			fmt.Printf("%s=%s\n", k, v)
		}
		return nil
	})
	// Output:
	// 2026-11-02=20
	// 2026-11-03=30
}

func ExampleDB_Batch() {
	db, cleanup := exampleDB()
	defer cleanup()
	db.Update(func(tx *mapkv.Tx) error { _, err := tx.CreateBucket([]byte("events")); return err })

	// Concurrent Batch calls share commits: one sync for many callers.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.Batch(func(tx *mapkv.Tx) error {
				b := tx.Bucket([]byte("events"))
				id, _ := b.NextSequence()
				return b.Put([]byte(fmt.Sprintf("event%03d", id)), []byte("payload"))
			})
			if err != nil {
				log.Fatal(err)
			}
		}()
	}
	wg.Wait()
	db.View(func(tx *mapkv.Tx) error {
		fmt.Println(tx.Bucket([]byte("events")).Stats().KeyN, "events")
		return nil
	})
	// Output: 8 events
}

func ExampleTx_WriteTo() {
	db, cleanup := exampleDB()
	defer cleanup()
	db.Update(func(tx *mapkv.Tx) error {
		b, _ := tx.CreateBucket([]byte("b"))
		return b.Put([]byte("k"), []byte("v"))
	})
	// A consistent copy of the database while writers go on; to a file
	// the bytes move with copy_file_range, to a socket with sendfile.
	backup := filepath.Join(os.TempDir(), "mapkv-example-backup.db")
	defer os.Remove(backup)
	f, err := os.Create(backup)
	if err != nil {
		log.Fatal(err)
	}
	err = db.View(func(tx *mapkv.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	copyDB, err := mapkv.Open(backup, &mapkv.Options{ReadOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer copyDB.Close()
	copyDB.View(func(tx *mapkv.Tx) error {
		fmt.Printf("backup holds k=%s\n", tx.Bucket([]byte("b")).Get([]byte("k")))
		return nil
	})
	// Output: backup holds k=v
}
