package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mapkv/mapkv"
)

// openDB opens a fresh database holding n values of size bytes in bucket
// "b" (and a nested bucket), closed at the end of the test.
func openDB(tb testing.TB, n, size int) *mapkv.DB {
	tb.Helper()
	db, err := mapkv.Open(filepath.Join(tb.TempDir(), "src.db"), &mapkv.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	fill(tb, db, n, size)
	return db
}

func fill(tb testing.TB, db *mapkv.DB, n, size int) {
	tb.Helper()
	for lo := 0; lo < n; lo += 500 {
		err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			nb, err := b.CreateBucketIfNotExists([]byte("nested"))
			if err != nil {
				return err
			}
			for i := lo; i < min(lo+500, n); i++ {
				k := fmt.Appendf(nil, "k%08d", i)
				if err := b.Put(k, bytes.Repeat([]byte{byte(i)}, size+i%5)); err != nil {
					return err
				}
				if i%10 == 0 {
					if err := nb.Put(k, k); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

var big struct {
	once sync.Once
	dir  string
	db   *mapkv.DB
	err  error
}

// bigDB returns a database of about 64 MiB, shared by the tests that only
// read it: larger than every socket buffer of loopback TCP (tcp_rmem
// allows 32 MiB), so a client that does not read stalls its stream.
func bigDB(tb testing.TB) *mapkv.DB {
	big.once.Do(func() {
		if big.dir, big.err = os.MkdirTemp("", "snapshot-test-"); big.err != nil {
			return
		}
		big.db, big.err = mapkv.Open(filepath.Join(big.dir, "big.db"), &mapkv.Options{NoSync: true})
		if big.err == nil {
			fill(tb, big.db, 2000, 32<<10)
		}
	})
	if big.err != nil {
		tb.Fatal(big.err)
	}
	return big.db
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big.db != nil {
		big.db.Close()
	}
	if big.dir != "" {
		os.RemoveAll(big.dir)
	}
	os.Exit(code)
}

// dump returns every key and value a transaction sees, by path.
func dump(tb testing.TB, tx *mapkv.Tx) map[string]string {
	tb.Helper()
	out := map[string]string{}
	var walk func(prefix string, b *mapkv.Bucket)
	walk = func(prefix string, b *mapkv.Bucket) {
		for k, v := range b.All() {
			p := prefix + "/" + string(k)
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					out[p] = "<bucket>"
					walk(p, nb)
					continue
				}
			}
			out[p] = string(v)
		}
	}
	err := tx.ForEachBucket(func(name []byte, b *mapkv.Bucket) error {
		walk(string(name), b)
		return nil
	})
	if err == nil {
		err = tx.Err()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// current returns the txid and data of db now.
func current(tb testing.TB, db *mapkv.DB) (uint64, map[string]string) {
	tb.Helper()
	var id uint64
	var d map[string]string
	err := db.View(func(tx *mapkv.Tx) error {
		id, d = tx.ID(), dump(tb, tx)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return id, d
}

// verifyImage opens the file at path and checks it holds want at txid.
func verifyImage(tb testing.TB, path string, txid uint64, want map[string]string) {
	tb.Helper()
	db, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
	if err != nil {
		tb.Fatalf("opening the image: %v", err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		tb.Fatalf("image fails Check: %v", err)
	}
	err = db.View(func(tx *mapkv.Tx) error {
		if tx.ID() != txid {
			tb.Errorf("image at tx %d, want %d", tx.ID(), txid)
		}
		if want != nil && !maps.Equal(dump(tb, tx), want) {
			tb.Errorf("image data differs from tx %d", txid)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// serve runs h on a loopback listener until the test ends and returns
// its base URL.
func serve(tb testing.TB, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// streamResult is what the handler reported of one stream.
type streamResult struct {
	s        mapkv.WriteStats
	hijacked bool
	err      error
}

// watchStreams reports every stream's end on the returned channel until
// the test ends.
func watchStreams(tb testing.TB) <-chan streamResult {
	ch := make(chan streamResult, 16)
	hook := func(s mapkv.WriteStats, hijacked bool, err error) {
		select {
		case ch <- streamResult{s, hijacked, err}:
		default:
		}
	}
	streamHook.Store(&hook)
	tb.Cleanup(func() { streamHook.Store(nil) })
	return ch
}

// nextStream waits for the next stream to end.
func nextStream(tb testing.TB, ch <-chan streamResult) streamResult {
	tb.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		tb.Fatal("no stream ended within 30s")
		return streamResult{}
	}
}

// waitReaders polls until db has n open read transactions, or fails
// after a deadline: a stream's end is asynchronous to the client.
func waitReaders(tb testing.TB, db *mapkv.DB, n int, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		got := db.Stats().OpenReadTxN
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d read transactions open after %v, want %d", got, within, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noTemps fails if dir holds anything but the names given. The lock file
// of a wanted database (name + "-lock", created when the test opened it) is
// allowed; any other, such as a temp image's, is not.
func noTemps(tb testing.TB, dir string, want ...string) {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), "-lock"); ok && slices.Contains(want, n) {
			continue
		}
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		tb.Fatalf("%s holds %v, want %v", dir, got, want)
	}
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
