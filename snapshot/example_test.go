package snapshot_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/mapkv/mapkv"
	"github.com/mapkv/mapkv/snapshot"
)

// A primary serves snapshots of its live database; a replica fetches one
// into a file, verified and renamed into place, and opens it.
func Example() {
	dir, err := os.MkdirTemp("", "snapshot-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The primary.
	db, err := mapkv.Open(filepath.Join(dir, "primary.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucket([]byte("config"))
		if err != nil {
			return err
		}
		return b.Put([]byte("greeting"), []byte("hello, replica"))
	})
	if err != nil {
		log.Fatal(err)
	}
	// In production: snapshot.Serve(ctx, db, "", opts), on 127.0.0.1:7070.
	srv := httptest.NewServer(snapshot.Handler(db, &snapshot.Options{Token: "s3cret"}))
	defer srv.Close()

	// The replica.
	replica := filepath.Join(dir, "replica.db")
	txid, err := snapshot.Fetch(context.Background(), srv.URL+"/snapshot", replica, &snapshot.FetchOptions{
		Token: "s3cret",
	})
	if err != nil {
		log.Fatal(err)
	}
	rdb, err := mapkv.Open(replica, &mapkv.Options{ReadOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
	rdb.View(func(tx *mapkv.Tx) error {
		fmt.Printf("tx %d: %s\n", txid, tx.Bucket([]byte("config")).Get([]byte("greeting")))
		return nil
	})
	// Output: tx 1: hello, replica
}

// Serve a database until interrupted. Equivalent to
// `mapkv snapshot serve app.db`; seed a replica with
// `curl -o replica.db http://127.0.0.1:7070/snapshot`.
func ExampleServe() {
	db, err := mapkv.Open("app.db", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := snapshot.Serve(ctx, db, "", &snapshot.Options{Token: os.Getenv("SNAPSHOT_TOKEN")}); err != nil {
		log.Fatal(err)
	}
}
