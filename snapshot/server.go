package snapshot

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mapkv/mapkv"
)

// DefaultAddr is where Serve listens when given no address: loopback
// only, so that a snapshot server is never exposed by accident.
const DefaultAddr = "127.0.0.1:7070"

// Path is the URL path Handler serves.
const Path = "/snapshot"

// Response headers of a snapshot, beside Content-Length.
const (
	HeaderTxID     = "X-Mapkv-Txid"      // txid of the image
	HeaderPageSize = "X-Mapkv-Page-Size" // page size of the image, in bytes
)

// defaultMaxConcurrent is Options.MaxConcurrent when unset.
const defaultMaxConcurrent = 4

// stallTimeout is how long a client may leave sent data unacknowledged
// (stop reading) before the kernel drops the connection, ending the
// stream and releasing its pinned pages. Variables so tests can shorten
// them; a Handler takes their values when it is made.
var stallTimeout = 2 * time.Minute

// lingerTimeout bounds the wait, after the last byte, for the client to
// close its side; see finish.
var lingerTimeout = 10 * time.Second

// Options configure Handler and Serve. A nil *Options means defaults.
type Options struct {
	// Token, if set, is required of every request as
	// "Authorization: Bearer <Token>", compared in constant time.
	Token string
	// MaxConcurrent is how many snapshots may stream at once; more get
	// 503 with Retry-After. Default 4.
	MaxConcurrent int
}

// handler serves GET and HEAD of Path.
type handler struct {
	db       *mapkv.DB
	pageSize string
	auth     bool
	token    [sha256.Size]byte // hash of the token: comparing hashes leaks not even its length
	slots    chan struct{}     // one per stream in flight
	streams  sync.WaitGroup    // streams in flight, for Serve to wait on
	stall    time.Duration     // stallTimeout when made
	linger   time.Duration     // lingerTimeout when made
}

// streamHook, if set (by tests), is told how each stream went.
var streamHook atomic.Pointer[func(s mapkv.WriteStats, hijacked bool, err error)]

// Handler returns an http.Handler serving snapshots of db at Path:
//
//   - GET streams the image of a new read transaction with Content-Length,
//     Content-Type application/octet-stream and the headers X-Mapkv-Txid
//     and X-Mapkv-Page-Size;
//   - HEAD answers the same headers, for the state current at that moment,
//     without a body;
//   - other methods get 405, other paths 404, a missing or wrong token 401,
//     a request past MaxConcurrent streams 503 with Retry-After.
//
// Mount it at the root of a server or at Path (http.ServeMux.Handle(Path,
// ...)); under another prefix, strip the prefix first.
//
// Over HTTP/1.x without TLS, the handler takes the connection over
// (http.Hijacker) and streams with sendfile(2); the response then always
// closes the connection. Over TLS or HTTP/2 it writes through the
// ResponseWriter, from the mapping, without zero copy.
func Handler(db *mapkv.DB, opts *Options) http.Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = defaultMaxConcurrent
	}
	h := &handler{
		db:       db,
		pageSize: strconv.Itoa(db.Stats().PageSize),
		auth:     o.Token != "",
		token:    sha256.Sum256([]byte(o.Token)),
		slots:    make(chan struct{}, o.MaxConcurrent),
		stall:    stallTimeout,
		linger:   lingerTimeout,
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mapkv"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodHead {
		tx, err := h.db.Begin(false)
		if err != nil {
			http.Error(w, "cannot read the database", http.StatusServiceUnavailable)
			return
		}
		h.setHeaders(w.Header(), tx)
		tx.Rollback()
		w.WriteHeader(http.StatusOK)
		return
	}
	select {
	case h.slots <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many snapshots streaming; retry later", http.StatusServiceUnavailable)
		return
	}
	h.streams.Add(1)
	defer h.streams.Done()
	tx, err := h.db.Begin(false)
	if err != nil {
		<-h.slots
		http.Error(w, "cannot read the database", http.StatusServiceUnavailable)
		return
	}
	h.setHeaders(w.Header(), tx)
	conn, brw, hijacked := hijack(w, r)
	var s mapkv.WriteStats
	if hijacked {
		// net/http no longer watches the connection: end the stream
		// when the request's context ends (for Serve, its context).
		stop := context.AfterFunc(r.Context(), func() { conn.Close() })
		defer stop()
		s, err = h.streamRaw(w.Header(), conn, brw, tx)
	} else {
		w.WriteHeader(http.StatusOK)
		s, err = tx.WriteToStats(w)
	}
	// Release the pinned pages and the slot before lingering.
	tx.Rollback()
	<-h.slots
	if hook := streamHook.Load(); hook != nil {
		(*hook)(s, hijacked, err)
	}
	if hijacked {
		finish(conn, h.linger, err)
	}
}

// authorized checks the bearer token in constant time.
func (h *handler) authorized(r *http.Request) bool {
	if !h.auth {
		return true
	}
	const scheme = "Bearer "
	got := r.Header.Get("Authorization")
	if len(got) < len(scheme) || !strings.EqualFold(got[:len(scheme)], scheme) {
		return false
	}
	sum := sha256.Sum256([]byte(got[len(scheme):]))
	return subtle.ConstantTimeCompare(sum[:], h.token[:]) == 1
}

func (h *handler) setHeaders(hdr http.Header, tx *mapkv.Tx) {
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Content-Length", strconv.FormatInt(tx.Size(), 10))
	hdr.Set("Cache-Control", "no-store")
	hdr.Set(HeaderTxID, strconv.FormatUint(tx.ID(), 10))
	hdr.Set(HeaderPageSize, h.pageSize)
}

// hijack takes the connection over from net/http when that can give
// Tx.WriteTo a bare socket: HTTP/1.x without TLS. A ResponseWriter
// wrapped by middleware is unwrapped by http.ResponseController.
func hijack(w http.ResponseWriter, r *http.Request) (net.Conn, *bufio.ReadWriter, bool) {
	if r.ProtoMajor != 1 || r.TLS != nil {
		return nil, nil, false
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, false
	}
	return conn, brw, true
}

// streamRaw writes the response head itself on a hijacked connection and
// streams the image on the bare socket. hdr is the ResponseWriter's
// header: ours, and whatever middleware put there.
func (h *handler) streamRaw(hdr http.Header, conn net.Conn, brw *bufio.ReadWriter, tx *mapkv.Tx) (mapkv.WriteStats, error) {
	if tc, ok := conn.(*net.TCPConn); ok {
		setStallTimeout(tc, h.stall)
	}
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	hdr.Set("Connection", "close")
	bw := brw.Writer
	bw.WriteString("HTTP/1.1 200 OK\r\n")
	if err := hdr.Write(bw); err != nil {
		return mapkv.WriteStats{}, err
	}
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		return mapkv.WriteStats{}, err
	}
	// The header block went out through bw; the body goes straight to the
	// socket, so that WriteTo sees its concrete type.
	return tx.WriteToStats(conn)
}

// finish closes a hijacked connection after a response. On success it
// first shuts down the sending side and waits (bounded) for the client to
// close: closing a socket with unread input would send a reset, and a
// reset makes the client's kernel drop whatever of the image it has not
// yet read.
func finish(conn net.Conn, linger time.Duration, streamErr error) {
	defer conn.Close()
	if streamErr != nil {
		return
	}
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	conn.SetReadDeadline(time.Now().Add(linger))
	io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
}

// Serve listens on addr (DefaultAddr if empty: loopback unless told
// otherwise) and serves Handler(db, opts) until ctx ends. It then stops
// accepting, ends the streams in flight (closing their connections) and
// returns nil once they have released their transactions. It returns an
// error if it cannot listen or the server fails.
//
// The server reads request headers with a timeout and keeps no write
// timeout: a snapshot takes as long as its size demands.
func Serve(ctx context.Context, db *mapkv.DB, addr string, opts *Options) error {
	if addr == "" {
		addr = DefaultAddr
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("snapshot: listen: %w", err)
	}
	h := Handler(db, opts).(*handler)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("snapshot: serve: %w", err)
	case <-ctx.Done():
	}
	// Streams on hijacked connections were closed when ctx ended (their
	// request contexts derive from it); Shutdown covers the rest.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("snapshot: serve: %w", err)
	}
	h.streams.Wait()
	return nil
}
