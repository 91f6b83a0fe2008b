package snapshot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/mapkv/mapkv"
)

// FetchOptions configure Fetch. A nil *FetchOptions means defaults.
type FetchOptions struct {
	// Token is sent as "Authorization: Bearer <Token>" if set.
	Token string
	// Progress, if not nil, is called with the bytes received so far and
	// the total, once before the first byte and then after each chunk
	// (every MiB), from Fetch's goroutine.
	Progress func(done, total int64)
	// Client makes the request. nil means Fetch's own HTTP/1.1 exchange
	// for http:// URLs, so the body can be spliced into the file (see the
	// package doc), and http.DefaultClient's settings otherwise.
	Client *http.Client
}

// progressChunk is how much Fetch receives between Progress calls.
const progressChunk = 1 << 20

// fetchStats says how a Fetch received its body; for tests.
type fetchStats struct {
	raw    bool  // Fetch's own HTTP exchange, not an http.Client
	direct int64 // bytes handed to os.File.ReadFrom on the bare socket (spliced)
	copied int64 // bytes read through a buffer
}

// Fetch downloads a snapshot from url into path. It receives into a
// temporary file beside path (path+".tmp-*", in the same directory, so
// the rename is atomic), fsyncs it, and verifies it: its size must equal
// the Content-Length, mapkv must open it read-only, trusting its newest
// meta (meta checksums), its DB.Check must pass, and its txid and page
// size must match the X-Mapkv-Txid and X-Mapkv-Page-Size headers. Only
// then is it renamed over path, and the directory fsynced. It returns the
// txid received.
//
// Any failure (the server's answer, a transfer cut short, ctx ending, a
// corrupt image) removes the temporary file and leaves path as it was. A
// process that has path open keeps reading the old file; reopen it to see
// the new one.
func Fetch(ctx context.Context, url, path string, opts *FetchOptions) (txid uint64, err error) {
	_, txid, err = fetch(ctx, url, path, opts)
	return txid, err
}

func fetch(ctx context.Context, url, path string, opts *FetchOptions) (fs fetchStats, txid uint64, err error) {
	var o FetchOptions
	if opts != nil {
		o = *opts
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("snapshot: fetch %s: %w", url, err)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fs, 0, err
	}
	if o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+o.Token)
	}
	req.Header.Set("User-Agent", "mapkv-snapshot-fetch")
	var (
		resp *http.Response
		raw  *rawResponse
	)
	if o.Client == nil && useRaw(req) {
		fs.raw = true
		raw, err = rawGet(ctx, req)
		if err != nil {
			return fs, 0, err
		}
		defer raw.close()
		resp = raw.resp
	} else {
		c := o.Client
		if c == nil {
			c = http.DefaultClient
		}
		if resp, err = c.Do(req); err != nil {
			return fs, 0, err
		}
		defer resp.Body.Close()
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fs, 0, fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	total := resp.ContentLength
	if total < 0 {
		return fs, 0, errors.New("response has no Content-Length")
	}
	txid, err = strconv.ParseUint(resp.Header.Get(HeaderTxID), 10, 64)
	if err != nil {
		return fs, 0, fmt.Errorf("bad %s header: %w", HeaderTxID, err)
	}
	pageSize, err := strconv.Atoi(resp.Header.Get(HeaderPageSize))
	if err != nil {
		return fs, 0, fmt.Errorf("bad %s header: %w", HeaderPageSize, err)
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return fs, 0, err
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()

	progress := func(done int64) {
		if o.Progress != nil {
			o.Progress(done, total)
		}
	}
	progress(0)
	var done int64
	if raw != nil {
		done, err = raw.receive(f, total, progress, &fs)
	} else {
		done, err = copyBody(f, resp.Body, total, progress, &fs)
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		}
		return fs, 0, err
	}
	if done != total {
		return fs, 0, fmt.Errorf("body ended after %d of %d bytes: %w", done, total, io.ErrUnexpectedEOF)
	}
	if err = f.Sync(); err != nil {
		return fs, 0, err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return fs, 0, err
	}
	if err = verify(tmp, total, txid, pageSize); err != nil {
		return fs, 0, err
	}
	if err = os.Rename(tmp, path); err != nil {
		return fs, 0, err
	}
	if err = syncDir(dir); err != nil {
		// The image is in place, but its name may not survive a crash.
		return fs, txid, fmt.Errorf("renamed into place, but: %w", err)
	}
	return fs, txid, nil
}

// copyBody reads an http.Client's body into f through a buffer (such a
// body is not a socket the kernel could splice from).
func copyBody(f *os.File, body io.Reader, total int64, progress func(int64), fs *fetchStats) (int64, error) {
	buf := make([]byte, 1<<20)
	var done int64
	for done < total {
		n, err := io.CopyBuffer(f, io.LimitReader(body, min(progressChunk, total-done)), buf)
		done += n
		fs.copied += n
		progress(done)
		if err != nil {
			return done, err
		}
		if n == 0 {
			break // the body ended early
		}
	}
	return done, nil
}

// verify opens the received image read-only and checks it against the
// response's headers.
func verify(path string, size int64, txid uint64, pageSize int) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("received %d bytes, Content-Length said %d", fi.Size(), size)
	}
	db, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
	// Opening creates the shared-reader lock file beside the image; it
	// belongs to the temp name and must not outlive the check.
	defer os.Remove(path + "-lock")
	if err != nil {
		return fmt.Errorf("verifying the image: %w", err)
	}
	defer db.Close()
	st := db.Stats()
	switch {
	case st.MetaFallback != "":
		// Both metas of an image are built alike: a fallback is damage.
		return fmt.Errorf("verifying the image: %w: %s", mapkv.ErrCorrupt, st.MetaFallback)
	case st.TxID != txid:
		return fmt.Errorf("verifying the image: it holds tx %d, the server announced %d", st.TxID, txid)
	case st.PageSize != pageSize:
		return fmt.Errorf("verifying the image: page size %d, the server announced %d", st.PageSize, pageSize)
	}
	if err := db.Check(); err != nil {
		return fmt.Errorf("verifying the image: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems cannot sync a directory (EINVAL): nothing to do there.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}

// useRaw reports whether Fetch may make the request itself: plain http,
// no proxy from the environment.
func useRaw(req *http.Request) bool {
	if req.URL.Scheme != "http" {
		return false
	}
	proxy, err := http.ProxyFromEnvironment(req)
	return err == nil && proxy == nil
}

// rawResponse is a response read by Fetch's own HTTP/1.1 exchange, with
// the connection beneath it.
type rawResponse struct {
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response
	stop func() bool
}

// rawGet sends req on a new connection (closed after the response) and
// reads the response head.
func rawGet(ctx context.Context, req *http.Request) (*rawResponse, error) {
	host := req.URL.Host
	if req.URL.Port() == "" {
		host = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	r := &rawResponse{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	// Unblock reads and splices when ctx ends.
	r.stop = context.AfterFunc(ctx, func() { conn.Close() })
	req.Close = true
	if err := req.Write(conn); err != nil {
		r.close()
		return nil, err
	}
	if r.resp, err = http.ReadResponse(r.br, req); err != nil {
		r.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return r, nil
}

func (r *rawResponse) close() {
	r.stop()
	r.conn.Close()
}

// receive writes the body to f: first what the response reader already
// buffered, then the rest straight from the socket with os.File.ReadFrom,
// which splices socket to file in the kernel.
func (r *rawResponse) receive(f *os.File, total int64, progress func(int64), fs *fetchStats) (int64, error) {
	if len(r.resp.TransferEncoding) > 0 {
		// Not what Handler sends; read it through net/http's decoder.
		return copyBody(f, r.resp.Body, total, progress, fs)
	}
	var done int64
	if n := min(int64(r.br.Buffered()), total); n > 0 {
		m, err := io.CopyN(f, r.br, n)
		done += m
		fs.copied += m
		progress(done)
		if err != nil {
			return done, err
		}
	}
	for done < total {
		lr := &io.LimitedReader{R: r.conn, N: min(progressChunk, total-done)}
		n, err := f.ReadFrom(lr)
		done += n
		fs.direct += n
		progress(done)
		if err != nil {
			return done, err
		}
		if n == 0 {
			break // the server closed early
		}
	}
	return done, nil
}
