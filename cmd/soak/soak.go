package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mapkv/mapkv"
)

// config is what the flags set.
type config struct {
	dir        string        // where the database lives (default: a new temporary directory)
	duration   time.Duration // how long to run
	readers    int           // reader goroutines
	pageSize   int           // page size of the new file
	peak       int64         // file size at which the writer turns to deleting
	maxBatch   int           // most operations in one commit
	maxSize    int64         // address space reserved (small: the file outgrows it, remaps)
	checkEvery time.Duration // interval between full Checks
	snapEvery  time.Duration // interval between snapshots
	seed       uint64
	noSync     bool
	quiet      bool
}

// Fixed shape of the data the invariants speak of.
const (
	accounts     = 100
	startBalance = 1000
	total        = accounts * startBalance
	keySpace     = 1 << 20
)

var (
	bucketData = []byte("data")
	bucketAcct = []byte("acct")
	bucketMeta = []byte("meta")
	keyN       = []byte("n")     // commits made by the soak
	keyCount   = []byte("count") // keys in bucketData
)

// report is what a run did and found.
type report struct {
	Duration        time.Duration
	Commits         int64
	Puts, Deletes   int64
	Transfers       int64
	ShortReads      int64
	LongReads       int64
	LongestRead     time.Duration
	Snapshots       [3]int64 // to io.Discard, to a pipe, to a file (then opened and checked)
	SnapshotBytes   int64
	Checks          int64
	Cycles          int64 // grow-then-shrink cycles completed
	PeakFileSize    int64
	FinalFileSize   int64
	Shrinks, Remaps int64
	PeakPinned      uint64
	PeakReaders     int
	GoroutinesStart int
	GoroutinesEnd   int
	FDsStart        int
	FDsEnd          int

	mu       sync.Mutex
	failures []string
}

func (r *report) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failures) < 50 {
		r.failures = append(r.failures, fmt.Sprintf(format, args...))
	}
}

func (r *report) Failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.failures...)
}

func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg config
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.dir, "dir", "", "directory for the database (default: a new temporary directory, removed at the end)")
	fs.DurationVar(&cfg.duration, "duration", time.Minute, "how long to run")
	fs.IntVar(&cfg.readers, "readers", 4, "reader goroutines")
	fs.IntVar(&cfg.pageSize, "pagesize", 4096, "page size of the new database")
	fs.Int64Var(&cfg.peak, "peak", 64<<20, "file size in bytes at which the writer turns to deleting")
	fs.IntVar(&cfg.maxBatch, "maxbatch", 2000, "most operations in one commit")
	fs.Int64Var(&cfg.maxSize, "maxsize", 16<<20, "address space reserved for the mapping (smaller than -peak: remaps)")
	fs.DurationVar(&cfg.checkEvery, "check", 10*time.Second, "interval between full Checks")
	fs.DurationVar(&cfg.snapEvery, "snapshot", time.Second, "interval between snapshots")
	fs.Uint64Var(&cfg.seed, "seed", 0, "random seed (0: from the clock)")
	fs.BoolVar(&cfg.noSync, "nosync", false, "commit without msync")
	fs.BoolVar(&cfg.quiet, "q", false, "print only the final report")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	r, err := run(ctx, cfg, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 1
	}
	r.print(stdout)
	if len(r.Failures()) > 0 {
		return 1
	}
	return 0
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "duration         %v\n", r.Duration.Round(time.Millisecond))
	fmt.Fprintf(w, "commits          %d (%d puts, %d deletes, %d transfers)\n", r.Commits, r.Puts, r.Deletes, r.Transfers)
	fmt.Fprintf(w, "read txs         %d short, %d long (longest %v)\n", r.ShortReads, r.LongReads, r.LongestRead.Round(time.Millisecond))
	fmt.Fprintf(w, "snapshots        %d to io.Discard, %d to a pipe, %d to a file (checked); %d bytes\n", r.Snapshots[0], r.Snapshots[1], r.Snapshots[2], r.SnapshotBytes)
	fmt.Fprintf(w, "checks           %d\n", r.Checks)
	fmt.Fprintf(w, "file             peak %d bytes, final %d; %d grow/shrink cycles, %d shrinks, %d remaps\n", r.PeakFileSize, r.FinalFileSize, r.Cycles, r.Shrinks, r.Remaps)
	fmt.Fprintf(w, "pinned pages     peak %d (peak %d open readers)\n", r.PeakPinned, r.PeakReaders)
	fmt.Fprintf(w, "goroutines       %d at start, %d at end\n", r.GoroutinesStart, r.GoroutinesEnd)
	fmt.Fprintf(w, "open fds         %d at start, %d at end\n", r.FDsStart, r.FDsEnd)
	if f := r.Failures(); len(f) > 0 {
		fmt.Fprintf(w, "FAILED           %d problem(s):\n  %s\n", len(f), strings.Join(f, "\n  "))
	} else {
		fmt.Fprintf(w, "result           ok: every invariant held, nothing leaked\n")
	}
}

// openFDs counts the process's open file descriptors.
func openFDs() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(es)
}

// settledGoroutines waits briefly for exiting goroutines and counts.
func settledGoroutines(base int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 100 && n > base; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

func run(ctx context.Context, cfg config, out io.Writer) (*report, error) {
	// The runtime opens its poller's descriptors (epoll, a wakeup event)
	// the first time a pipe is used, and keeps them: open them now, so
	// that the count at the end compares like with like.
	if pr, pw, err := os.Pipe(); err == nil {
		pr.SetReadDeadline(time.Now())
		pr.Close()
		pw.Close()
	}
	r := &report{GoroutinesStart: runtime.NumGoroutine(), FDsStart: openFDs()}
	logf := func(format string, args ...any) {
		if !cfg.quiet {
			fmt.Fprintf(out, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}
	}
	dir := cfg.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "mapkv-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	path := filepath.Join(dir, "soak.db")
	opts := &mapkv.Options{
		PageSize:        cfg.pageSize,
		NoSync:          cfg.noSync,
		MaxSize:         cfg.maxSize,
		InitialSize:     1 << 20,
		GrowStep:        4 << 20,
		ShrinkThreshold: 1 << 20,
	}
	db, err := mapkv.Open(path, opts)
	if err != nil {
		return nil, err
	}
	logf("soak: %s, seed %d, %d readers, for %v", path, cfg.seed, cfg.readers, cfg.duration)
	w := &writer{db: db, r: r, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.seed, 1)), keys: map[uint32]bool{}}
	if err := w.init(); err != nil {
		db.Close()
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	stopAll := func(err error) {
		r.fail("%v", err)
		cancel()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.loop(ctx, logf); err != nil {
			stopAll(fmt.Errorf("writer: %w", err))
		}
	}()
	for i := 0; i < cfg.readers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rd := &reader{db: db, r: r, rng: rand.New(rand.NewPCG(cfg.seed, uint64(100+i)))}
			if err := rd.loop(ctx); err != nil {
				stopAll(fmt.Errorf("reader %d: %w", i, err))
			}
		}(i)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := snapshots(ctx, db, dir, cfg, r); err != nil {
			stopAll(fmt.Errorf("snapshot: %w", err))
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(cfg.checkEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for quiet.Load() && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond) // let the lull be
			}
			t0 := time.Now()
			if err := db.Check(); err != nil {
				stopAll(fmt.Errorf("Check: %w", err))
				return
			}
			atomic.AddInt64(&r.Checks, 1)
			logf("check ok in %v; %s", time.Since(t0).Round(time.Millisecond), w.status())
		}
	}()
	// Lulls in the reading: half a second in every two.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer quiet.Store(false)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(1500 * time.Millisecond):
			}
			quiet.Store(true)
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			quiet.Store(false)
		}
	}()
	// Sample the statistics.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			s := db.Stats()
			r.mu.Lock()
			r.PeakFileSize = max(r.PeakFileSize, s.FileSize)
			r.PeakPinned = max(r.PeakPinned, s.PinnedPageN)
			r.PeakReaders = max(r.PeakReaders, s.OpenReadTxN)
			r.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	wg.Wait()
	r.Duration = time.Since(start)

	if err := db.Check(); err != nil {
		r.fail("final Check: %v", err)
	}
	s := db.Stats()
	r.Shrinks, r.Remaps, r.FinalFileSize = s.ShrinkN, s.RemapN, s.FileSize
	if s.OpenReadTxN != 0 {
		r.fail("%d read transactions still open at the end", s.OpenReadTxN)
	}
	if err := db.Close(); err != nil {
		r.fail("Close: %v", err)
	}
	// Reopen: the writer's last commit is there, whole.
	db, err = mapkv.Open(path, opts)
	if err != nil {
		r.fail("reopen: %v", err)
	} else {
		if err := db.Check(); err != nil {
			r.fail("Check after reopen: %v", err)
		}
		if err := db.View(func(tx *mapkv.Tx) error { return w.verifyFinal(tx) }); err != nil {
			r.fail("after reopen: %v", err)
		}
		db.Close()
	}
	r.GoroutinesEnd = settledGoroutines(r.GoroutinesStart)
	r.FDsEnd = openFDs()
	if r.GoroutinesEnd > r.GoroutinesStart {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		r.fail("goroutines leaked: %d at start, %d at end\n%s", r.GoroutinesStart, r.GoroutinesEnd, buf)
	}
	if r.FDsEnd > r.FDsStart {
		r.fail("file descriptors leaked: %d at start, %d at end", r.FDsStart, r.FDsEnd)
	}
	return r, nil
}

// ---------------------------------------------------------------------

// writer is the one goroutine that commits. It keeps the set of keys the
// data bucket holds, to check the final state.
type writer struct {
	db        *mapkv.DB
	r         *report
	cfg       config
	rng       *rand.Rand
	keys      map[uint32]bool
	n         uint64
	shrinking bool // deleting, until the data bucket is nearly empty
	peaked    bool // the file reached the peak and has not shrunk to half of it since
	lastLog   time.Time

	// shown is a copy of the figures above for other goroutines' status.
	shown struct {
		n         atomic.Uint64
		keys      atomic.Int64
		shrinking atomic.Bool
	}
}

func dataKey(k uint32) []byte { return fmt.Appendf(nil, "d%08d", k) }

func balance(v []byte) (int64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("balance of %d bytes", len(v))
	}
	return int64(binary.LittleEndian.Uint64(v)), nil
}

func putBalance(b int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(b)) }

func (w *writer) init() error {
	return w.db.Update(func(tx *mapkv.Tx) error {
		for _, name := range [][]byte{bucketData, bucketMeta} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		acct, err := tx.CreateBucket(bucketAcct)
		if err != nil {
			return err
		}
		for i := 0; i < accounts; i++ {
			if err := acct.Put(fmt.Appendf(nil, "a%03d", i), putBalance(startBalance)); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyN, []byte("0")); err != nil {
			return err
		}
		return meta.Put(keyCount, []byte("0"))
	})
}

// status describes the writer's progress; any goroutine may call it.
func (w *writer) status() string {
	s := w.db.Stats()
	phase := "growing"
	if w.shown.shrinking.Load() {
		phase = "shrinking"
	}
	return fmt.Sprintf("commit %d, %d keys, file %d bytes (%s), %d pages: %d free, %d pending (%d pinned), %d readers",
		w.shown.n.Load(), w.shown.keys.Load(), s.FileSize, phase, s.PageCount, s.FreePageN, s.PendingPageN, s.PinnedPageN, s.OpenReadTxN)
}

// show publishes the writer's figures for status.
func (w *writer) show() {
	w.shown.n.Store(w.n)
	w.shown.keys.Store(int64(len(w.keys)))
	w.shown.shrinking.Store(w.shrinking)
}

// value returns a value of random size with a checkable body: its length
// and key repeated.
func (w *writer) value(k uint32) []byte {
	n := 8 + w.rng.IntN(400)
	switch x := w.rng.IntN(100); {
	case x < 10:
		n = 1000 + w.rng.IntN(8000)
	case x < 12:
		n = 20000 + w.rng.IntN(60000) // overflow pages
	}
	v := make([]byte, n)
	binary.LittleEndian.PutUint32(v, k)
	binary.LittleEndian.PutUint32(v[4:], uint32(n))
	for i := 8; i < n; i++ {
		v[i] = byte(k) + byte(i)
	}
	return v
}

// checkValue verifies a value written by value.
func checkValue(k uint32, v []byte) error {
	if len(v) < 8 || binary.LittleEndian.Uint32(v) != k || int(binary.LittleEndian.Uint32(v[4:])) != len(v) {
		return fmt.Errorf("key %d: damaged value of %d bytes", k, len(v))
	}
	for i := 8; i < len(v); i += 97 {
		if v[i] != byte(k)+byte(i) {
			return fmt.Errorf("key %d: damaged value byte %d", k, i)
		}
	}
	return nil
}

func (w *writer) loop(ctx context.Context, logf func(string, ...any)) error {
	for ctx.Err() == nil {
		size := 1 + int(w.rng.ExpFloat64()*float64(w.cfg.maxBatch)/8)
		size = min(size, w.cfg.maxBatch)
		added := map[uint32]bool{}
		removed := map[uint32]bool{}
		var puts, dels, transfers int64
		err := w.db.Update(func(tx *mapkv.Tx) error {
			clear(added)
			clear(removed)
			puts, dels, transfers = 0, 0, 0
			data := tx.Bucket(bucketData)
			for i := 0; i < size; i++ {
				if !w.shrinking || w.rng.IntN(10) == 0 {
					k := uint32(w.rng.IntN(keySpace))
					if err := data.Put(dataKey(k), w.value(k)); err != nil {
						return err
					}
					added[k], removed[k] = true, false
					puts++
					continue
				}
				// Delete a run of keys from a random place, through a cursor.
				c := data.Cursor()
				from := dataKey(uint32(w.rng.IntN(keySpace)))
				run := 1 + w.rng.IntN(50)
				for k, _ := c.Seek(from); k != nil && run > 0; k, _ = c.Next() {
					var id uint32
					if _, err := fmt.Sscanf(string(k), "d%08d", &id); err != nil {
						return fmt.Errorf("bad key %q", k)
					}
					if err := c.Delete(); err != nil {
						return err
					}
					removed[id], added[id] = true, false
					dels++
					run--
					i++
				}
			}
			acct := tx.Bucket(bucketAcct)
			for i := w.rng.IntN(5); i >= 0; i-- {
				a, b := fmt.Appendf(nil, "a%03d", w.rng.IntN(accounts)), fmt.Appendf(nil, "a%03d", w.rng.IntN(accounts))
				ba, err := balance(acct.Get(a))
				if err != nil {
					return err
				}
				amount := w.rng.Int64N(ba + 1)
				if err := acct.Put(a, putBalance(ba-amount)); err != nil {
					return err
				}
				bb, err := balance(acct.Get(b))
				if err != nil {
					return err
				}
				if err := acct.Put(b, putBalance(bb+amount)); err != nil {
					return err
				}
				transfers++
			}
			count := len(w.keys)
			for k := range added {
				if added[k] && !w.keys[k] {
					count++
				}
			}
			for k := range removed {
				if removed[k] && w.keys[k] {
					count--
				}
			}
			meta := tx.Bucket(bucketMeta)
			if err := meta.Put(keyN, fmt.Appendf(nil, "%d", w.n+1)); err != nil {
				return err
			}
			return meta.Put(keyCount, fmt.Appendf(nil, "%d", count))
		})
		if err != nil {
			return err
		}
		w.n++
		for k, ok := range added {
			if ok {
				w.keys[k] = true
			}
		}
		for k, ok := range removed {
			if ok {
				delete(w.keys, k)
			}
		}
		atomic.AddInt64(&w.r.Commits, 1)
		atomic.AddInt64(&w.r.Puts, puts)
		atomic.AddInt64(&w.r.Deletes, dels)
		atomic.AddInt64(&w.r.Transfers, transfers)
		fs := w.db.Stats().FileSize
		w.show()
		say := func(format string, args ...any) { // phases can turn fast: log them now and then
			if time.Since(w.lastLog) >= 5*time.Second {
				w.lastLog = time.Now()
				logf(format, args...)
			}
		}
		switch {
		case !w.shrinking && fs >= w.cfg.peak && len(w.keys) >= 2000:
			w.shrinking, w.peaked = true, true
			w.show()
			say("peak reached: %s", w.status())
		case w.shrinking && len(w.keys) < 200:
			w.shrinking = false
			w.show()
			say("emptied: %s", w.status())
		}
		if w.peaked && fs < w.cfg.peak/2 {
			w.peaked = false
			atomic.AddInt64(&w.r.Cycles, 1)
			say("file shrank: %s", w.status())
		}
	}
	return nil
}

// verifyFinal checks that tx holds exactly the writer's last commit.
func (w *writer) verifyFinal(tx *mapkv.Tx) error {
	n, count, err := verifyState(tx, true)
	if err != nil {
		return err
	}
	if n != w.n {
		return fmt.Errorf("last commit %d, the writer made %d", n, w.n)
	}
	if count != len(w.keys) {
		return fmt.Errorf("%d keys, the writer has %d", count, len(w.keys))
	}
	for k := range w.keys {
		if v := tx.Bucket(bucketData).Get(dataKey(k)); v == nil {
			return fmt.Errorf("key %d missing", k)
		}
	}
	return nil
}

// verifyState checks the invariants of one state: the accounts hold the
// total, and (if full) the data bucket holds as many keys as recorded,
// in order, each with an intact value. It returns the commit number and
// the key count.
func verifyState(tx *mapkv.Tx, full bool) (n uint64, count int, err error) {
	meta, acct, data := tx.Bucket(bucketMeta), tx.Bucket(bucketAcct), tx.Bucket(bucketData)
	if meta == nil || acct == nil || data == nil {
		return 0, 0, errors.New("a bucket is missing")
	}
	if _, err := fmt.Sscanf(string(meta.Get(keyN)), "%d", &n); err != nil {
		return 0, 0, fmt.Errorf("commit number %q: %v", meta.Get(keyN), err)
	}
	if _, err := fmt.Sscanf(string(meta.Get(keyCount)), "%d", &count); err != nil {
		return 0, 0, fmt.Errorf("count %q: %v", meta.Get(keyCount), err)
	}
	var sum int64
	accts := 0
	for _, v := range acct.All() {
		b, err := balance(v)
		if err != nil {
			return 0, 0, err
		}
		sum += b
		accts++
	}
	if sum != total || accts != accounts {
		return 0, 0, fmt.Errorf("commit %d: %d accounts hold %d, want %d holding %d", n, accts, sum, accounts, total)
	}
	if !full {
		return n, count, tx.Err()
	}
	seen := 0
	var prev []byte
	for k, v := range data.All() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return 0, 0, fmt.Errorf("commit %d: keys out of order at %q", n, k)
		}
		prev = append(prev[:0], k...)
		var id uint32
		if _, err := fmt.Sscanf(string(k), "d%08d", &id); err != nil {
			return 0, 0, fmt.Errorf("bad key %q", k)
		}
		if err := checkValue(id, v); err != nil {
			return 0, 0, err
		}
		seen++
	}
	if seen != count {
		return 0, 0, fmt.Errorf("commit %d: %d keys, the commit recorded %d", n, seen, count)
	}
	return n, count, tx.Err()
}

// ---------------------------------------------------------------------

// quiet is set for a moment now and then: readers start no transaction
// while it is, as in the lulls of a real load. A commit cuts the file
// short only when no reader of an older state is open.
var quiet atomic.Bool

// reader runs read transactions: mostly short ones (lookups, a short scan
// and the account total), some long ones that walk everything slowly and
// keep their pages pinned for a second or more.
type reader struct {
	db    *mapkv.DB
	r     *report
	rng   *rand.Rand
	lastN uint64
}

func (rd *reader) loop(ctx context.Context) error {
	for ctx.Err() == nil {
		if quiet.Load() {
			// A lull: with no reader open, commits may cut the file short.
			time.Sleep(time.Millisecond)
			continue
		}
		long := rd.rng.IntN(20) == 0
		start := time.Now()
		err := rd.db.View(func(tx *mapkv.Tx) error {
			n, count, err := verifyState(tx, long)
			if err != nil {
				return err
			}
			if n < rd.lastN {
				return fmt.Errorf("commit %d seen after commit %d", n, rd.lastN)
			}
			rd.lastN = n
			data := tx.Bucket(bucketData)
			if long {
				// Hold the transaction while commits go on, then walk
				// again: the same state.
				time.Sleep(time.Duration(200+rd.rng.IntN(800)) * time.Millisecond)
				n2, count2, err := verifyState(tx, true)
				if err != nil {
					return err
				}
				if n2 != n || count2 != count {
					return fmt.Errorf("one transaction saw commit %d with %d keys, then commit %d with %d", n, count, n2, count2)
				}
				return nil
			}
			c := data.Cursor()
			var prev []byte
			steps := 0
			for k, v := c.Seek(dataKey(uint32(rd.rng.IntN(keySpace)))); k != nil && steps < 100; k, v = c.Next() {
				if prev != nil && bytes.Compare(prev, k) >= 0 {
					return fmt.Errorf("keys out of order at %q", k)
				}
				prev = append(prev[:0], k...)
				var id uint32
				fmt.Sscanf(string(k), "d%08d", &id)
				if err := checkValue(id, v); err != nil {
					return err
				}
				steps++
			}
			for i := 0; i < 20; i++ {
				k := uint32(rd.rng.IntN(keySpace))
				if v := data.Get(dataKey(k)); v != nil {
					if err := checkValue(k, v); err != nil {
						return err
					}
				}
			}
			return tx.Err()
		})
		if err != nil {
			return err
		}
		time.Sleep(time.Duration(rd.rng.IntN(1000)) * time.Microsecond)
		if long {
			atomic.AddInt64(&rd.r.LongReads, 1)
			d := time.Since(start)
			rd.r.mu.Lock()
			rd.r.LongestRead = max(rd.r.LongestRead, d)
			rd.r.mu.Unlock()
		} else {
			atomic.AddInt64(&rd.r.ShortReads, 1)
		}
	}
	return nil
}

// ---------------------------------------------------------------------

// snapshots streams an image of the database now and then, in turn to
// io.Discard, through a pipe (hashing what arrives), and to a file that
// is then opened and checked: it must hold exactly the state its
// transaction saw.
func snapshots(ctx context.Context, db *mapkv.DB, dir string, cfg config, r *report) error {
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.snapEvery):
		}
		if quiet.Load() {
			continue
		}
		kind := i % 3
		var n uint64
		var count int
		var written int64
		err := db.View(func(tx *mapkv.Tx) error {
			var err error
			if n, count, err = verifyState(tx, false); err != nil {
				return err
			}
			switch kind {
			case 0:
				written, err = tx.WriteTo(io.Discard)
			case 1:
				written, err = toPipe(tx)
			case 2:
				written, err = toFile(tx, filepath.Join(dir, "snapshot.db"))
			}
			if err == nil && written != tx.Size() {
				err = fmt.Errorf("wrote %d bytes of a %d-byte image", written, tx.Size())
			}
			return err
		})
		if err != nil {
			return err
		}
		if kind == 2 {
			if err := checkSnapshot(filepath.Join(dir, "snapshot.db"), n, count); err != nil {
				return err
			}
		}
		atomic.AddInt64(&r.Snapshots[kind], 1)
		atomic.AddInt64(&r.SnapshotBytes, written)
	}
}

func toPipe(tx *mapkv.Tx) (int64, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	got := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, pr)
		pr.Close()
		got <- n
	}()
	n, err := tx.WriteTo(pw)
	pw.Close()
	if m := <-got; err == nil && m != n {
		err = fmt.Errorf("the pipe carried %d bytes, WriteTo says %d", m, n)
	}
	return n, err
}

func toFile(tx *mapkv.Tx, path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := tx.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func checkSnapshot(path string, n uint64, count int) error {
	defer os.Remove(path)
	db, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("opening the snapshot of commit %d: %w", n, err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		return fmt.Errorf("snapshot of commit %d: %w", n, err)
	}
	return db.View(func(tx *mapkv.Tx) error {
		n2, count2, err := verifyState(tx, true)
		if err != nil {
			return fmt.Errorf("snapshot of commit %d: %w", n, err)
		}
		if n2 != n || count2 != count {
			return fmt.Errorf("snapshot of commit %d with %d keys holds commit %d with %d", n, count, n2, count2)
		}
		return nil
	})
}
