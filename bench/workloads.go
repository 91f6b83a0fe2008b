package bench

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// workload is one of the benchmark's workloads.
type workload struct {
	name string
	// desc is the one-line description used in the report.
	desc string
	// run measures engine d and records its figures.
	run func(r *runner, d engineDef) error
	// bare, if set, measures the workload's baseline (engine "bare").
	bare func(r *runner) error
}

// workloads lists every workload in canonical order. Later workloads reuse
// the databases the load workloads built (see runner.fixture): get-random,
// scan, snapshot and space read the load-random database, commit-sync and
// batch write into the load-sorted one, mixed writes into the
// load-random-1k one, and space deletes from the load-random one last.
var workloads = []workload{
	{
		name: "load-random",
		desc: "load every key in random order, 10,000 keys per synced transaction",
		run:  loadWorkload("load-random", fxRandom),
	},
	{
		name: "load-sorted",
		desc: "load every key in key order, 10,000 keys per synced transaction",
		run:  loadWorkload("load-sorted", fxSorted),
	},
	{
		name: "load-random-1k",
		desc: "load every key in random order, 1,000 keys per synced transaction",
		run:  loadWorkload("load-random-1k", fxRandom1k),
	},
	{
		name: "commit-sync",
		desc: "one new key per synced transaction into the loaded database; latency per commit",
		run:  runCommitSync,
		bare: bareFdatasync,
	},
	{
		name: "batch",
		desc: fmt.Sprintf("%d goroutines each committing one key at a time through the engine's group commit, synced", BatchWriters),
		run:  runBatch,
	},
	{
		name: "get-random",
		desc: "every key once in random order after reopening: one goroutine, then GOMAXPROCS goroutines",
		run:  runGetRandom,
	},
	{
		name: "scan",
		desc: "full ordered scan in one read transaction, of the load-random database (and, informational, of the load-sorted one)",
		run:  runScan,
	},
	{
		name: "mixed",
		desc: fmt.Sprintf("one writer committing %d new keys per synced transaction while GOMAXPROCS-1 readers look up %d random keys per read transaction", MixedTxKeys, MixedReadKeys),
		run:  runMixed,
	},
	{
		name: "snapshot",
		desc: fmt.Sprintf("stream a consistent copy of the whole database to a loopback TCP receiver, %d times per turn (median)", SnapshotStreams),
		run:  runSnapshot,
		bare: bareSendfile,
	},
	{
		name: "space",
		desc: fmt.Sprintf("on-disk bytes after load-random and load-sorted, then after deleting %.0f%% of the keys (10,000 per synced transaction)", DeleteFraction*100),
		run:  runSpace,
	},
}

// Workloads returns the names of all workloads in canonical order.
func Workloads() []string {
	var names []string
	for _, w := range workloads {
		names = append(names, w.name)
	}
	return names
}

// lookupWorkloads resolves names to workloads in canonical order.
func lookupWorkloads(names []string) ([]workload, error) {
	for _, n := range names {
		if !slices.Contains(Workloads(), n) {
			return nil, fmt.Errorf("unknown workload %q (have %v)", n, Workloads())
		}
	}
	var ws []workload
	for _, w := range workloads {
		if slices.Contains(names, w.name) {
			ws = append(ws, w)
		}
	}
	return ws, nil
}

// loadWorkload returns a load workload that builds the fixture of the given
// kind and records keys per second.
func loadWorkload(name, kind string) func(*runner, engineDef) error {
	return func(r *runner, d engineDef) error {
		took, _, err := r.load(d, kind)
		if err != nil {
			return err
		}
		r.add(name, d.name, "throughput", float64(r.data.n)/took.Seconds(), "keys/s", nil)
		return nil
	}
}

// runCommitSync commits Config.Commits single-key transactions into the
// load-sorted database and records the median and p99 latency.
func runCommitSync(r *runner, d engineDef) error {
	f, err := r.fixture(d, fxSorted)
	if err != nil {
		return err
	}
	keys, vals := r.data.freshPairs(r.cfg.Commits, uint64(1000+r.rep))
	lat := make([]float64, 0, r.cfg.Commits)
	err = withEngine(d, f.dir, func(e Engine) error {
		for i := range r.cfg.Commits {
			start := time.Now()
			if err := e.Put(record(keys, i, KeySize), record(vals, i, ValueSize)); err != nil {
				return err
			}
			lat = append(lat, micros(time.Since(start)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.addLatencies("commit-sync", d.name, "median", "p99", lat)
	return nil
}

// bareFdatasync measures the floor for commit-sync: a 4 KiB pwrite plus one
// fdatasync on the same file system.
func bareFdatasync(r *runner) error {
	r.res.Baselines["commit-sync"] = "one 4 KiB pwrite + fdatasync on the same file system"
	dir := filepath.Join(r.repDir, "bare")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lat, err := fdatasyncLatencies(dir, r.cfg.Commits)
	if err != nil {
		return err
	}
	r.addLatencies("commit-sync", "bare", "median", "p99", lat)
	return nil
}

// addLatencies records the median and p99 of lat (µs), keeping the samples
// with the median.
func (r *runner) addLatencies(workload, engine, medName, p99Name string, lat []float64) {
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	r.add(workload, engine, medName, median(sorted), "µs", lat)
	r.add(workload, engine, p99Name, percentile(sorted, 99), "µs", nil)
}

// runBatch has BatchWriters goroutines commit Config.Commits new keys in
// all, one key per call, through the engine's group commit, into the
// load-sorted database.
func runBatch(r *runner, d engineDef) error {
	f, err := r.fixture(d, fxSorted)
	if err != nil {
		return err
	}
	ops := r.cfg.Commits
	keys, vals := r.data.freshPairs(ops, uint64(2000+r.rep))
	var took time.Duration
	err = withEngine(d, f.dir, func(e Engine) error {
		var wg sync.WaitGroup
		errs := make([]error, BatchWriters)
		start := time.Now()
		for g := range BatchWriters {
			wg.Go(func() {
				for i := g; i < ops; i += BatchWriters {
					if err := e.PutConcurrent(record(keys, i, KeySize), record(vals, i, ValueSize)); err != nil {
						errs[g] = err
						return
					}
				}
			})
		}
		wg.Wait()
		took = time.Since(start)
		return errors.Join(errs...)
	})
	if err != nil {
		return err
	}
	r.add("batch", d.name, "throughput", float64(ops)/took.Seconds(), "commits/s", nil)
	return nil
}

// runGetRandom looks up every key once in random order, first on one
// goroutine, then split over GOMAXPROCS goroutines; the database is
// reopened before each pass so both start with a cold mapping. It records
// both rates, their ratio and the heap allocations per lookup of the
// single-goroutine pass.
func runGetRandom(r *runner, d engineDef) error {
	f, err := r.fixture(d, fxRandom)
	if err != nil {
		return err
	}
	n := r.data.n
	probe := r.data.probeKeys
	var single time.Duration
	var allocs uint64
	if err := warm(f.dir); err != nil {
		return err
	}
	// Garbage is collected before Open, not after it: a collection
	// there took 5-20 ms, untimed, while whatever an engine's Open left
	// running went on (mapkv's warm-up maps the file in about that).
	runtime.GC()
	err = withEngine(d, f.dir, func(e Engine) error {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		found, _, err := e.Get(probe)
		single = time.Since(start)
		runtime.ReadMemStats(&after)
		allocs = after.Mallocs - before.Mallocs
		if err == nil && found != n {
			err = fmt.Errorf("found %d of %d keys", found, n)
		}
		return err
	})
	if err != nil {
		return err
	}

	procs := runtime.GOMAXPROCS(0)
	var parallel time.Duration
	if err := warm(f.dir); err != nil {
		return err
	}
	runtime.GC()
	err = withEngine(d, f.dir, func(e Engine) error {
		var wg sync.WaitGroup
		founds := make([]int, procs)
		errs := make([]error, procs)
		start := time.Now()
		for g := range procs {
			lo, hi := g*n/procs, (g+1)*n/procs
			wg.Go(func() {
				founds[g], _, errs[g] = e.Get(probe[lo*KeySize : hi*KeySize])
			})
		}
		wg.Wait()
		parallel = time.Since(start)
		if err := errors.Join(errs...); err != nil {
			return err
		}
		total := 0
		for _, x := range founds {
			total += x
		}
		if total != n {
			return fmt.Errorf("parallel pass found %d of %d keys", total, n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s := float64(n) / single.Seconds()
	p := float64(n) / parallel.Seconds()
	r.add("get-random", d.name, "single", s, "gets/s", nil)
	r.add("get-random", d.name, "parallel", p, "gets/s", nil)
	r.add("get-random", d.name, "scaling", p/s, "×", nil)
	r.add("get-random", d.name, "allocs", float64(allocs)/float64(n), "allocs/op", nil)
	return nil
}

// runScan reads the load-random database in key order, then the
// load-sorted one (informational: by then commit-sync and batch may have
// added keys to it, which the scan counts).
func runScan(r *runner, d engineDef) error {
	for _, kind := range []string{fxRandom, fxSorted} {
		f, err := r.fixture(d, kind)
		if err != nil {
			return err
		}
		var took time.Duration
		var count int
		if err := warm(f.dir); err != nil {
			return err
		}
		runtime.GC() // before Open (see runGetRandom)
		err = withEngine(d, f.dir, func(e Engine) error {
			start := time.Now()
			var sum uint64
			var err error
			count, sum, err = e.Scan()
			took = time.Since(start)
			if err != nil {
				return err
			}
			if count < r.data.n || kind == fxRandom && count != r.data.n || sum != uint64(count)*(KeySize+ValueSize) {
				return fmt.Errorf("scan of the %s database saw %d pairs (sum %d), want %d", kind, count, sum, r.data.n)
			}
			return nil
		})
		if err != nil {
			return err
		}
		metric := "throughput"
		if kind == fxSorted {
			metric = "sorted"
		}
		r.add("scan", d.name, metric, float64(count)/took.Seconds(), "keys/s", nil)
	}
	return nil
}

// runSnapshot streams the load-random database to a loopback receiver with
// the engine's own mechanism.
func runSnapshot(r *runner, d engineDef) error {
	f, err := r.fixture(d, fxRandom)
	if err != nil {
		return err
	}
	if err := warm(f.dir); err != nil {
		return err
	}
	return withEngine(d, f.dir, func(e Engine) error {
		s, ok := e.(Snapshotter)
		if !ok {
			return fmt.Errorf("%s does not implement Snapshotter", d.name)
		}
		return r.streams(d.name, s.Snapshot)
	})
}

// streams streams SnapshotStreams copies with send and records the median
// rate (keeping each stream's rate as a sample) and the bytes of one copy.
// Loopback TCP on a small machine is noisy; the median of a few streams
// steadies the figure of each turn.
func (r *runner) streams(engine string, send func(*net.TCPConn) (int64, error)) error {
	rates := make([]float64, 0, SnapshotStreams)
	var n int64
	for range SnapshotStreams {
		var took time.Duration
		var err error
		if n, took, err = streamTo(send); err != nil {
			return err
		}
		rates = append(rates, float64(n)/1e6/took.Seconds())
	}
	sorted := slices.Clone(rates)
	slices.Sort(sorted)
	r.add("snapshot", engine, "throughput", median(sorted), "MB/s", rates)
	r.add("snapshot", engine, "bytes", float64(n)/1e6, "MB", nil)
	return nil
}

// bareSendfile streams the same data file mapkv's snapshot streams (or, if
// mapkv is not running, the first engine's that keeps one file) with a bare
// sendfile.
func bareSendfile(r *runner) error {
	var src *engineDef
	for i := range r.defs {
		if r.defs[i].file != "" {
			src = &r.defs[i]
			break
		}
	}
	if src == nil {
		return errors.New("no single-file engine selected to take the file from")
	}
	r.res.Baselines["snapshot"] = "sendfile(2) of " + src.name + "'s data file: io.Copy from *os.File in io.LimitedReader to *net.TCPConn"
	f, err := r.fixture(*src, fxRandom)
	if err != nil {
		return err
	}
	if err := warm(f.dir); err != nil {
		return err
	}
	return r.streams("bare", sendFile(filepath.Join(f.dir, src.file)))
}

// runMixed runs one writer committing MixedTxKeys new keys per synced
// transaction, Config.MixedCommits times, into the load-random-1k database
// while GOMAXPROCS-1 readers (at least one) look up loaded keys,
// MixedReadKeys per read transaction, until the writer is done. One
// processor is left to the writer so that its latency measures the engine,
// not the Go scheduler. The readers start warm: every key is read once,
// untimed, before the writer starts.
func runMixed(r *runner, d engineDef) error {
	f, err := r.fixture(d, fxRandom1k)
	if err != nil {
		return err
	}
	commits := r.cfg.MixedCommits
	keys, vals := r.data.freshPairs(commits*MixedTxKeys, uint64(3000+r.rep))
	readers := max(1, runtime.GOMAXPROCS(0)-1)
	n := r.data.n
	chunks := max(1, n/MixedReadKeys)
	lat := make([]float64, 0, commits)
	var gets atomic.Int64
	var took time.Duration
	err = withEngine(d, f.dir, func(e Engine) error {
		// Read every key once, untimed, so that the readers measure a
		// steady state rather than the first touch after reopening
		// (which get-random already measures).
		if _, _, err := e.Get(r.data.probeKeys); err != nil {
			return err
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		errs := make([]error, readers)
		start := time.Now()
		for g := range readers {
			wg.Go(func() {
				for c := g * chunks / readers; !stop.Load(); c = (c + 1) % chunks {
					lo, hi := c*MixedReadKeys, min((c+1)*MixedReadKeys, n)
					found, _, err := e.Get(r.data.probeKeys[lo*KeySize : hi*KeySize])
					if err == nil && found != hi-lo {
						err = fmt.Errorf("reader found %d of %d keys", found, hi-lo)
					}
					if err != nil {
						errs[g] = err
						return
					}
					gets.Add(int64(found))
				}
			})
		}
		var werr error
		for i := range commits {
			lo, hi := i*MixedTxKeys, (i+1)*MixedTxKeys
			t := time.Now()
			if werr = e.Put(keys[lo*KeySize:hi*KeySize], vals[lo*ValueSize:hi*ValueSize]); werr != nil {
				break
			}
			lat = append(lat, micros(time.Since(t)))
		}
		stop.Store(true)
		wg.Wait()
		took = time.Since(start)
		return errors.Join(append(errs, werr)...)
	})
	if err != nil {
		return err
	}
	r.add("mixed", d.name, "reader", float64(gets.Load())/took.Seconds(), "gets/s", nil)
	r.addLatencies("mixed", d.name, "writer-median", "writer-p99", lat)
	return nil
}

// runSpace records the on-disk bytes of the load-random and load-sorted
// databases right after loading, then deletes DeleteFraction of the keys
// from the load-random one (a random subset, LoadTxKeys per synced
// transaction) and records its bytes again.
func runSpace(r *runner, d engineDef) error {
	fr, err := r.fixture(d, fxRandom)
	if err != nil {
		return err
	}
	fsorted, err := r.fixture(d, fxSorted)
	if err != nil {
		return err
	}
	del := int(float64(r.data.n) * DeleteFraction)
	err = withEngine(d, fr.dir, func(e Engine) error {
		for i := 0; i < del; i += LoadTxKeys {
			j := min(i+LoadTxKeys, del)
			if err := e.Delete(r.data.randKeys[i*KeySize : j*KeySize]); err != nil {
				return fmt.Errorf("delete tx at key %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	after, _, err := diskUsage(fr.dir)
	if err != nil {
		return err
	}
	r.add("space", d.name, "after-load-random", float64(fr.allocated)/1e6, "MB", nil)
	r.add("space", d.name, "after-load-sorted", float64(fsorted.allocated)/1e6, "MB", nil)
	r.add("space", d.name, "after-delete-90", float64(after)/1e6, "MB", nil)
	r.add("space", d.name, "shrink", float64(after)/float64(fr.allocated), "×", nil)
	// The database no longer holds the full data set.
	delete(r.fixtures, fxRandom+"/"+d.name)
	return nil
}
