//go:build linux

package snapshot

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mapkv/mapkv"
)

// TestFetch receives with Fetch's own HTTP exchange (nil Client), and
// checks the body went from the socket to the file by ReadFrom.
func TestFetch(t *testing.T) {
	db := openDB(t, 3000, 1000)
	base := serve(t, Handler(db, &Options{Token: "tok"}))
	txid, want := current(t, db)
	dir := t.TempDir()
	path := filepath.Join(dir, "replica.db")
	var calls [][2]int64
	opts := &FetchOptions{Token: "tok", Progress: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }}
	fs, got, err := fetch(ctxT(t), base+"/snapshot", path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got != txid {
		t.Fatalf("Fetch returned tx %d, want %d", got, txid)
	}
	verifyImage(t, path, txid, want)
	noTemps(t, dir, "replica.db")
	fi, _ := os.Stat(path)
	size := fi.Size()
	if !fs.raw || fs.direct+fs.copied != size || fs.direct < size-64<<10 {
		t.Fatalf("received %+v of %d bytes; want the raw path with all but the first buffer read by ReadFrom", fs, size)
	}
	if len(calls) < 2 || calls[0] != [2]int64{0, size} || calls[len(calls)-1] != [2]int64{size, size} {
		t.Fatalf("progress calls %v, want from 0 to %d of %d", calls, size, size)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] < calls[i-1][0] {
			t.Fatalf("progress went back: %v", calls)
		}
	}
}

// With a Client of the caller's, Fetch reads through net/http, and
// replaces an existing file.
func TestFetchClient(t *testing.T) {
	db := openDB(t, 2000, 500)
	base := serve(t, Handler(db, nil))
	txid, want := current(t, db)
	dir := t.TempDir()
	path := filepath.Join(dir, "replica.db")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs, got, err := fetch(ctxT(t), base+"/snapshot", path, &FetchOptions{Client: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	if got != txid || fs.raw || fs.direct != 0 {
		t.Fatalf("tx %d (want %d), stats %+v", got, txid, fs)
	}
	verifyImage(t, path, txid, want)
	noTemps(t, dir, "replica.db")
}

// fakeServer serves an image with whatever damage serve does to it.
type fakeServer func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int)

func TestFetchFailures(t *testing.T) {
	var cancelFetch context.CancelFunc // of the Fetch running
	db := openDB(t, 2000, 500)
	var img bytes.Buffer
	var txid uint64
	err := db.View(func(tx *mapkv.Tx) error {
		txid = tx.ID()
		_, err := tx.WriteTo(&img)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ps := db.Stats().PageSize
	badPage := damagedForCheck(t, img.Bytes(), ps)
	headers := func(w http.ResponseWriter, size int, id uint64) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Header().Set(HeaderTxID, strconv.FormatUint(id, 10))
		w.Header().Set(HeaderPageSize, strconv.Itoa(ps))
	}
	cases := []struct {
		name  string
		serve fakeServer
		want  string // in the error
	}{
		{"sanity", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			headers(w, len(img), txid)
			w.Write(img)
		}, ""},
		{"server error", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			http.Error(w, "disk on fire", http.StatusInternalServerError)
		}, "500 Internal Server Error: disk on fire"},
		{"truncated body", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			headers(w, len(img), txid)
			w.Write(img[:len(img)/2])
		}, "unexpected EOF"},
		{"corrupt body", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			bad := bytes.Clone(img)
			for off := 2*ps + 100; off < len(bad); off += ps {
				bad[off] ^= 0x5a
			}
			headers(w, len(bad), txid)
			w.Write(bad)
		}, "database corrupt"},
		{"corrupt page", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			headers(w, len(badPage), txid)
			w.Write(badPage)
		}, "check found"},
		{"corrupt meta", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			bad := bytes.Clone(img)
			bad[40] ^= 0xff
			headers(w, len(bad), txid)
			w.Write(bad)
		}, "database corrupt"},
		{"wrong txid", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			headers(w, len(img), txid+1)
			w.Write(img)
		}, "server announced"},
		{"no txid", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			headers(w, len(img), txid)
			w.Header().Del(HeaderTxID)
			w.Write(img)
		}, "bad X-Mapkv-Txid"},
		{"not a database", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			junk := bytes.Repeat([]byte("junk"), len(img)/4)
			headers(w, len(junk), txid)
			w.Write(junk)
		}, "database corrupt"},
		{"chunked", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			headers(w, len(img), txid)
			w.Header().Del("Content-Length")
			w.Write(img)
		}, "no Content-Length"},
		{"canceled", func(w http.ResponseWriter, r *http.Request, img []byte, txid uint64, ps int) {
			headers(w, len(img), txid)
			w.Write(img[:len(img)/2])
			w.(http.Flusher).Flush()
			cancelFetch()
			<-r.Context().Done() // until the client gives up
		}, "context canceled"},
	}
	for _, client := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(tc.name+map[bool]string{false: "/raw", true: "/client"}[client], func(t *testing.T) {
				base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					tc.serve(w, r, img.Bytes(), txid, ps)
				}))
				dir := t.TempDir()
				path := filepath.Join(dir, "replica.db")
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				opts := &FetchOptions{}
				if client {
					opts.Client = &http.Client{}
				}
				ctx, cancel := context.WithCancel(ctxT(t))
				defer cancel()
				cancelFetch = cancel
				fs, _, err := fetch(ctx, base+"/snapshot", path, opts)
				if fs.raw == client {
					t.Errorf("raw path %v with client %v", fs.raw, client)
				}
				if tc.want == "" {
					if err != nil {
						t.Fatal(err)
					}
					verifyImage(t, path, txid, nil)
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Fetch: %v; want an error containing %q", err, tc.want)
				}
				if b, _ := os.ReadFile(path); string(b) != "old" {
					t.Fatalf("Fetch failed but changed the destination (%d bytes)", len(b))
				}
				noTemps(t, dir, "replica.db")
			})
		}
	}
}

// damagedForCheck returns img with one byte flipped in a page that Open
// does not read (so only Check can find it).
func damagedForCheck(t *testing.T, img []byte, ps int) []byte {
	path := filepath.Join(t.TempDir(), "bad.db")
	for off := 2*ps + 100; off < len(img); off += ps {
		bad := bytes.Clone(img)
		bad[off] ^= 0x5a
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
		if err != nil {
			continue
		}
		err = db.Check()
		db.Close()
		if err != nil {
			return bad
		}
	}
	t.Fatal("no page found whose damage only Check sees")
	return nil
}

func TestFetchRefused(t *testing.T) {
	db := openDB(t, 10, 10)
	base := serve(t, Handler(db, &Options{Token: "right"}))
	dir := t.TempDir()
	path := filepath.Join(dir, "replica.db")
	for _, tok := range []string{"", "wrong"} {
		_, err := Fetch(ctxT(t), base+"/snapshot", path, &FetchOptions{Token: tok})
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("token %q: %v, want 401", tok, err)
		}
	}
	if _, err := Fetch(ctxT(t), "http://127.0.0.1:1/snapshot", path, nil); err == nil {
		t.Fatal("Fetch from a closed port succeeded")
	}
	if _, err := Fetch(ctxT(t), base+"/snapshot", filepath.Join(dir, "no", "such", "dir.db"), &FetchOptions{Token: "right"}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Fetch into a missing directory: %v", err)
	}
	noTemps(t, dir)
}

// TestFetchSplices runs a Fetch under strace in a child process and
// checks the body moved with splice(2), socket to pipe to file.
func TestFetchSplices(t *testing.T) {
	if os.Getenv("MAPKV_FETCH_CHILD") != "" {
		db := openDB(t, 3000, 1000)
		base := serve(t, Handler(db, nil))
		os.Stderr.WriteString("mapkv-fetch-begin\n")
		_, err := Fetch(ctxT(t), base+"/snapshot", filepath.Join(t.TempDir(), "r.db"), nil)
		os.Stderr.WriteString("mapkv-fetch-end\n")
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed")
	}
	if testing.Short() {
		t.Skip("spawns strace")
	}
	out := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-o", out, "-e", "trace=splice,sendfile,sendfile64,write",
		os.Args[0], "-test.run=^TestFetchSplices$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MAPKV_FETCH_CHILD=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(b), "ptrace") {
			t.Skipf("strace cannot trace here: %s", b)
		}
		t.Fatalf("child under strace: %v\n%s", err, b)
	}
	trace, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var spliced, sent int64
	in := false
	for line := range strings.Lines(string(trace)) {
		switch {
		case strings.Contains(line, "mapkv-fetch-begin"):
			in = true
		case strings.Contains(line, "mapkv-fetch-end"):
			in = false
		case in && (strings.Contains(line, "splice(") || strings.Contains(line, "sendfile(") || strings.Contains(line, "sendfile64(") || strings.Contains(line, "resumed>")):
			_, ret, ok := strings.Cut(line, ") = ")
			n, err := strconv.ParseInt(strings.Fields(ret + " x")[0], 10, 64)
			if !ok || err != nil {
				continue
			}
			if strings.Contains(line, "splice") {
				spliced += n
			} else if strings.Contains(line, "sendfile") {
				sent += n
			}
		}
	}
	// Each byte is spliced twice: socket to pipe, pipe to file.
	if sent == 0 || spliced < sent {
		t.Fatalf("server sent %d bytes by sendfile, the client spliced %d; want them spliced (twice)", sent, spliced)
	}
	t.Logf("sendfile moved %d bytes, splice %d", sent, spliced)
}
