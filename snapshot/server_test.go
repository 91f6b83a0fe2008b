//go:build linux

package snapshot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mapkv/mapkv"
)

// TestSnapshotHandlerGet streams over net/http's client and checks that
// the handler took the connection over and sendfile moved every page
// byte.
func TestSnapshotHandlerGet(t *testing.T) {
	db := openDB(t, 3000, 500)
	streams := watchStreams(t)
	base := serve(t, Handler(db, nil))
	txid, want := current(t, db)

	resp, err := http.Get(base + "/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	path := filepath.Join(t.TempDir(), "got.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, resp.Body)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	size := db.Stats().PageCount * uint64(db.Stats().PageSize)
	ps := int64(db.Stats().PageSize)
	for k, v := range map[string]string{
		"Content-Type":   "application/octet-stream",
		"Content-Length": strconv.FormatUint(size, 10),
		HeaderTxID:       strconv.FormatUint(txid, 10),
		HeaderPageSize:   strconv.FormatInt(ps, 10),
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("header %s: %q, want %q", k, got, v)
		}
	}
	if n != int64(size) || resp.ContentLength != int64(size) {
		t.Fatalf("received %d bytes, Content-Length %d, want %d", n, resp.ContentLength, size)
	}
	r := nextStream(t, streams)
	if r.err != nil || !r.hijacked {
		t.Fatalf("stream: hijacked %v, err %v", r.hijacked, r.err)
	}
	if want := (mapkv.WriteStats{Sendfile: int64(size) - 2*ps, Meta: 2 * ps}); r.s != want {
		t.Fatalf("stream moved %+v, want %+v", r.s, want)
	}
	verifyImage(t, path, txid, want)
	waitReaders(t, db, 0, 10*time.Second)
}

func TestSnapshotHandlerHead(t *testing.T) {
	db := openDB(t, 100, 100)
	base := serve(t, Handler(db, nil))
	txid, _ := current(t, db)
	resp, err := http.Head(base + "/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	st := db.Stats()
	size := int64(st.PageCount) * int64(st.PageSize)
	if resp.StatusCode != 200 || resp.ContentLength != size || len(body) != 0 ||
		resp.Header.Get(HeaderTxID) != strconv.FormatUint(txid, 10) || resp.Header.Get(HeaderPageSize) != strconv.Itoa(st.PageSize) {
		t.Fatalf("HEAD: %s, Content-Length %d (want %d), %d body bytes, headers %v", resp.Status, resp.ContentLength, size, len(body), resp.Header)
	}
	if n := db.Stats().OpenReadTxN; n != 0 {
		t.Fatalf("%d read transactions left open by HEAD", n)
	}
}

func TestSnapshotHandlerMethodAndPath(t *testing.T) {
	db := openDB(t, 10, 10)
	base := serve(t, Handler(db, nil))
	resp, err := http.Post(base+"/snapshot", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
	resp, err = http.Get(base + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %s", resp.Status)
	}
}

func TestSnapshotHandlerToken(t *testing.T) {
	db := openDB(t, 100, 100)
	base := serve(t, Handler(db, &Options{Token: "s3cret-token"}))
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Bearer s3cret-tokeX", http.StatusUnauthorized}, // same length
		{"Bearer s3cret-token-and-more", http.StatusUnauthorized},
		{"Basic s3cret-token", http.StatusUnauthorized},
		{"s3cret-token", http.StatusUnauthorized},
		{"Bearer s3cret-token", http.StatusOK},
		{"bearer s3cret-token", http.StatusOK}, // the scheme is case-insensitive
	} {
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			req, _ := http.NewRequest(method, base+"/snapshot", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s with %q: %s, want %d", method, tc.auth, resp.Status, tc.want)
			}
			if resp.StatusCode == http.StatusUnauthorized && (resp.Header.Get(HeaderTxID) != "" || n > 100) {
				t.Errorf("%s with %q: a refusal carries the snapshot (%d bytes)", method, tc.auth, n)
			}
		}
	}
	waitReaders(t, db, 0, 10*time.Second)
}

// getStalled starts a GET and reads only the response head: the stream
// then blocks once the socket buffers are full.
func getStalled(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET: %s", resp.Status)
	}
	return resp
}

func TestSnapshotHandlerMaxConcurrent(t *testing.T) {
	db := bigDB(t)
	streams := watchStreams(t)
	base := serve(t, Handler(db, &Options{MaxConcurrent: 2}))
	a := getStalled(t, base+"/snapshot")
	defer a.Body.Close()
	b := getStalled(t, base+"/snapshot")
	defer b.Body.Close()

	resp, err := http.Get(base + "/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	// Both are still streaming (the image is larger than the buffers).
	if n := db.Stats().OpenReadTxN; n != 2 {
		t.Fatalf("%d read transactions open, want the 2 stalled streams", n)
	}
	// HEAD is not a stream and is not capped.
	if resp, err := http.Head(base + "/snapshot"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD past the cap: %v %v", resp, err)
	}
	// Drain one: its slot frees and a new stream is let in.
	if _, err := io.Copy(io.Discard, a.Body); err != nil {
		t.Fatal(err)
	}
	if r := nextStream(t, streams); r.err != nil {
		t.Fatalf("drained stream: %v", r.err)
	}
	c := getStalled(t, base+"/snapshot")
	c.Body.Close()
	b.Body.Close()
	nextStream(t, streams)
	nextStream(t, streams)
	waitReaders(t, db, 0, 10*time.Second)
}

// A client that goes away mid-stream ends the stream and its read
// transaction at once.
func TestSnapshotHandlerClientDisconnect(t *testing.T) {
	db := bigDB(t)
	streams := watchStreams(t)
	base := serve(t, Handler(db, nil))
	resp := getStalled(t, base+"/snapshot")
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	if n := db.Stats().OpenReadTxN; n != 1 {
		t.Fatalf("%d read transactions open mid-stream, want 1", n)
	}
	resp.Body.Close() // closes the connection: the body was not read to its end
	waitReaders(t, db, 0, 10*time.Second)
	if r := nextStream(t, streams); r.err == nil || r.s.Total() >= resp.ContentLength {
		t.Fatalf("stream ended with %v after %d of %d bytes; want an error", r.err, r.s.Total(), resp.ContentLength)
	}
}

// A client that stops reading but keeps its connection is dropped by the
// kernel after the stall timeout (TCP_USER_TIMEOUT).
func TestSnapshotHandlerStalledClient(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the stall timeout")
	}
	db := bigDB(t)
	streams := watchStreams(t)
	old := stallTimeout
	stallTimeout = 500 * time.Millisecond
	h := Handler(db, nil)
	stallTimeout = old
	base := serve(t, h)
	resp := getStalled(t, base+"/snapshot")
	defer resp.Body.Close()
	r := nextStream(t, streams)
	if r.err == nil || r.s.Total() >= resp.ContentLength {
		t.Fatalf("stalled stream ended with %v after %d of %d bytes; want a timeout", r.err, r.s.Total(), resp.ContentLength)
	}
	t.Logf("stalled stream ended after %d bytes: %v", r.s.Total(), r.err)
	waitReaders(t, db, 0, 10*time.Second)
}

// Over TLS (HTTP/1.1 and HTTP/2) the connection cannot be handed over:
// the image is written through the ResponseWriter from the mapping.
func TestSnapshotHandlerTLS(t *testing.T) {
	db := openDB(t, 2000, 500)
	txid, want := current(t, db)
	ps := int64(db.Stats().PageSize)
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			streams := watchStreams(t)
			srv := httptest.NewUnstartedServer(Handler(db, nil))
			srv.EnableHTTP2 = h2
			srv.StartTLS()
			defer srv.Close()
			c := srv.Client()
			resp, err := c.Get(srv.URL + "/snapshot")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
				t.Fatalf("spoke %s", resp.Proto)
			}
			path := filepath.Join(t.TempDir(), "got.db")
			f, _ := os.Create(path)
			n, err := io.Copy(f, resp.Body)
			f.Close()
			if err != nil || n != resp.ContentLength {
				t.Fatalf("received %d of %d bytes: %v", n, resp.ContentLength, err)
			}
			r := nextStream(t, streams)
			if r.err != nil || r.hijacked || r.s.Mapped != n-2*ps || r.s.Sendfile != 0 {
				t.Fatalf("stream: %+v", r)
			}
			verifyImage(t, path, txid, want)
		})
	}
}

// The raw response head written after a hijack is valid HTTP for a bare
// client too, and carries headers set by middleware.
func TestSnapshotHandlerRawHead(t *testing.T) {
	db := openDB(t, 10, 10)
	h := Handler(db, nil)
	mw := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Middleware", "yes")
		h.ServeHTTP(w, r)
	})
	base := serve(t, mw)
	conn, err := net.Dial("tcp", base[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /snapshot HTTP/1.0\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != resp.ContentLength || resp.Header.Get("X-Middleware") != "yes" || !resp.Close {
		t.Fatalf("raw response: %d of %d bytes (%v), headers %v, close %v", n, resp.ContentLength, err, resp.Header, resp.Close)
	}
	// The server closes after the body.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the body: %v, want EOF", err)
	}
}

// Writers commit all through a stream; the image is exactly the state as
// of the txid in its header.
func TestSnapshotConcurrentWriters(t *testing.T) {
	db := openDB(t, 1200, 32<<10) // larger than the socket buffers
	streams := watchStreams(t)
	base := serve(t, Handler(db, nil))
	baseID, baseData := current(t, db)
	// Commit i of the writer is tx baseID+i+1.
	apply := func(m map[string]string, i int) {
		m[fmt.Sprintf("b/k%08d", i*7%1200)] = fmt.Sprintf("w%d", i)
		m[fmt.Sprintf("b/w%08d", i)] = string(make([]byte, 3000))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ctx.Err() == nil; i++ {
			err := db.Update(func(tx *mapkv.Tx) error {
				m := map[string]string{}
				apply(m, i)
				b := tx.Bucket([]byte("b"))
				for k, v := range m {
					if err := b.Put([]byte(k[2:]), []byte(v)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	resp := getStalled(t, base+"/snapshot")
	txid, _ := strconv.ParseUint(resp.Header.Get(HeaderTxID), 10, 64)
	path := filepath.Join(t.TempDir(), "got.db")
	f, _ := os.Create(path)
	duringStream := uint64(0) // commits seen while the server's tx was open
	for {
		_, err := io.CopyN(f, resp.Body, 256<<10)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// Let the writer get a few commits in between reads.
		for target := db.Stats().TxID + 3; db.Stats().TxID < target; {
			select {
			case <-writerDone:
				t.Fatal("the writer stopped")
			case <-time.After(100 * time.Microsecond):
			}
		}
		if st := db.Stats(); st.OpenReadTxN == 1 && st.OldestReadTxID == txid {
			duringStream = st.TxID - txid
		}
	}
	f.Close()
	resp.Body.Close()
	cancel()
	<-writerDone
	if r := nextStream(t, streams); r.err != nil || r.s.Sendfile == 0 {
		t.Fatalf("stream %+v", r)
	}
	if duringStream < 20 {
		t.Fatalf("only %d commits while the stream's transaction was open", duringStream)
	}
	t.Logf("%d commits while tx %d streamed; %d in all", duringStream, txid, db.Stats().TxID-baseID)
	want := baseData
	for i := 0; i < int(txid-baseID); i++ {
		apply(want, i)
	}
	verifyImage(t, path, txid, want)
}

func TestSnapshotServe(t *testing.T) {
	db := bigDB(t)
	// Find a free port; Serve listens on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, db, addr, &Options{Token: "t"}) }()
	url := "http://" + addr + "/snapshot"
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer t")
		resp, err = http.DefaultClient.Do(req)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %s", resp.Status)
	}
	// A stalled stream is ended by the shutdown.
	waitReaders(t, db, 1, 10*time.Second)
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if n := db.Stats().OpenReadTxN; n != 0 {
		t.Fatalf("Serve returned with %d read transactions open", n)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Fatal("the body of a stream cut by shutdown read to its end")
	}
}

func TestSnapshotServeListenError(t *testing.T) {
	db := openDB(t, 1, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Serve(context.Background(), db, ln.Addr().String(), nil)
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("Serve on a taken port: %v, want a *net.OpError", err)
	}
}
