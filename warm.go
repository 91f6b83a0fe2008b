package mapkv

import (
	"runtime"

	"github.com/mapkv/mapkv/btree"
	"github.com/mapkv/mapkv/page"
)

// startWarm starts the warm-up (see Options.NoWarmup): a goroutine that
// reads, through the mapping Open made, the first bytes of every node of
// the database whose page is in the page cache, in key order, so that the
// kernel maps those pages before the readers reach them. A read of a
// page the process has not mapped yet faults, and a fault maps about 16
// pages for some microseconds: on the machines mapkv is measured on, the
// first full scan of a 188 MB database after Open spent about 10 of its
// 24 ms mapping its 46,000 pages (BenchmarkReadScan, cold-nowarmup
// against warm). The warm-up takes that work to another core, and reads no
// page from disk (mmap.Residency). It needs a core to spare: with
// GOMAXPROCS 1 it does not start.
//
// It reads the tree of the commit that was newest at Open without pinning
// it: a page a later commit reuses only wastes a read, and every read is
// bounded by that commit's page count and guarded against faults.
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
			t := btree.Tree{Data: st.m.region.Data, PageSize: db.pageSize, PgCount: st.meta.PgCount}
			ps := int64(db.pageSize)
			db.warmNodes = t.Warm(st.meta.Root, func(id page.ID) bool { return res.Has(int64(id) * ps) }, db.warmStop.Load)
			return nil
		})
	}()
}

// stopWarm stops the warm-up and waits for it.
func (db *DB) stopWarm() {
	db.warmStop.Store(true)
	db.warmWG.Wait()
}
