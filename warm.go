package mapkv

import (
	"runtime"

	"github.com/mapkv/mapkv/mmap"
)

// startWarm starts the warm-up (see Options.NoWarmup): a goroutine that
// reads, through the mapping Open made, one byte of every warmStep bytes
// of the database that holds a page in the page cache, in file order, so
// that the kernel maps those pages before the readers reach them. A read
// of a page the process has not mapped yet faults, and a fault maps the
// cached pages of the 64 KiB around it (the kernel's fault-around) for
// some microseconds: on the machines mapkv is measured on, the first full
// scan of a 188 MB database after Open spent about 10 of its 24 ms
// mapping its 46,000 pages (BenchmarkReadScan, cold-nowarmup against
// warm). The warm-up takes that work to another core, and reads no page
// from disk (mmap.Residency). It needs a core to spare: with GOMAXPROCS 1
// it does not start.
//
// It goes in file order, one read per fault, rather than down the trees:
// walking the trees read every node's first bytes (a cache miss each) and
// faulted on most of them in key order, which after a random load is no
// order at all in the file; a scan started with it caught up with it at
// once, and the two then faulted on the same pages (about 4,000 faults a
// pass instead of 2,900). In file order the warm-up maps the 188 MB file
// with one read per fault, never twice, and stays ahead of a scan of a
// file loaded in key order. BenchmarkReadScan/cold on that file, three
// alternated pairs of runs of the two builds: 18.7-19.3 ns a key against
// 22.3-23.2, 27 cpu-ns a key against 38-39 (both goroutines' CPU), 2,890
// faults a pass against 3,840-3,880; lookups (BenchmarkReadGet/cold) and
// a scan of a file loaded in key order took as long as before, within
// the runs' spread.
//
// It reads the file as the commit that was newest at Open left it,
// without pinning that commit: a page a later commit frees is mapped for
// nothing, and every read is bounded by that commit's page count and
// guarded against faults.
func (db *DB) startWarm() {
	if db.opts.NoWarmup || runtime.GOMAXPROCS(0) < 2 {
		return
	}
	db.stateMu.Lock()
	st := db.state
	st.m.refs++
	db.stateMu.Unlock()
	db.warmWG.Add(1)
	go func() {
		defer db.warmWG.Done()
		defer db.release(st.m)
		defer func() {
			// The warm-up is advice: nothing it meets may stop the
			// program. Tests look at warmPanic.
			if r := recover(); r != nil {
				db.warmPanic = r
			}
		}()
		_ = guard(func() error {
			n := int64(st.meta.PgCount) * int64(db.pageSize)
			res, err := st.m.region.Resident(db.file, n)
			if err != nil {
				return err
			}
			// A page the kernel read ahead carries a mark, and the first
			// fault on it reads further ahead (8 MiB a time on the VMs
			// mapkv is measured on): touching the pages Open's own reads
			// brought in would read the whole file. MADV_RANDOM stops
			// that for faults on this mapping, readers' too, until the
			// warm-up ends.
			st.m.region.Advise(true)
			defer st.m.region.Advise(false)
			db.warmReads = warmFile(st.m.region.Data[:n], res, db.warmStop.Load)
			return nil
		})
	}()
}

// warmStep is how far apart the warm-up's reads are: the kernel's
// default fault-around, 64 KiB (a fault maps the cached pages of the
// aligned 64 KiB that holds the page read). Where fault-around is
// smaller, the readers map the rest themselves, as without a warm-up.
const warmStep = 64 << 10

// warmFile reads the first cached page of every warmStep bytes of data
// (cached as res tells), in order, until stop reports true (asked before
// each read). It returns how many pages it read.
func warmFile(data []byte, res *mmap.Residency, stop func() bool) (reads int) {
	var sum byte
	for off := int64(0); off < int64(len(data)); {
		p, ok := res.Next(off)
		if !ok || stop() {
			break
		}
		sum += data[p]
		reads++
		off = (p/warmStep + 1) * warmStep
	}
	runtime.KeepAlive(sum) // keep the loads
	return reads
}

// stopWarm stops the warm-up and waits for it.
func (db *DB) stopWarm() {
	db.warmStop.Store(true)
	db.warmWG.Wait()
}
