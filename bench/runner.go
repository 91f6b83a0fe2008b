package bench

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
)

// runner carries the state of one invocation.
type runner struct {
	cfg  Config
	data *dataset
	defs []engineDef
	res  *Results

	scratch string
	// rep is the current repetition (1-based) and repDir its directory.
	rep    int
	repDir string
	// fixtures are the loaded databases of the current repetition, by
	// kind and engine; see fixture.
	fixtures map[string]*fixture
}

// fixture is a database loaded with the whole data set, closed, waiting in
// its directory for the workloads that read it.
type fixture struct {
	dir string
	// allocated and apparent are its on-disk and apparent bytes right
	// after loading and closing.
	allocated, apparent int64
}

// Fixture kinds: which load built the database.
const (
	fxRandom   = "random"    // load-random: random order, 10k keys per tx
	fxSorted   = "sorted"    // load-sorted: key order, 10k keys per tx
	fxRandom1k = "random-1k" // load-random-1k: random order, 1k keys per tx
)

// Run runs the configured workloads and returns what it measured. A
// workload that fails on an engine is recorded in Results.Errors and the
// run goes on; Run itself fails only if it cannot start.
func Run(cfg Config) (*Results, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	defs, err := lookupEngines(cfg.Engines)
	if err != nil {
		return nil, err
	}
	wls, err := lookupWorkloads(cfg.Workloads)
	if err != nil {
		return nil, err
	}
	base := cfg.Dir
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(base, "kvbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)

	r := &runner{cfg: cfg, defs: defs, scratch: scratch}
	r.res = &Results{
		Config:    cfg,
		Machine:   describeMachine(scratch),
		Started:   time.Now().UTC(),
		Baselines: map[string]string{},
	}
	for _, d := range defs {
		r.res.Engines = append(r.res.Engines, EngineInfo{Name: d.name, Version: d.version(), Notes: d.notes})
	}
	for _, w := range wls {
		r.res.Workloads = append(r.res.Workloads, w.name)
	}

	meter := startCPUMeter()
	r.logf("kvbench: n=%d count=%d engines=%s workloads=%s scratch=%s",
		cfg.N, cfg.Count, strings.Join(cfg.Engines, ","), strings.Join(r.res.Workloads, ","), scratch)
	start := time.Now()
	r.data = newDataset(cfg.N, cfg.Seed)
	r.logf("data set: %d pairs generated in %v; load average %s", cfg.N, time.Since(start).Round(time.Millisecond), loadAvg())

	for r.rep = 1; r.rep <= cfg.Count; r.rep++ {
		r.repDir = filepath.Join(scratch, fmt.Sprintf("rep-%d", r.rep))
		if err := os.MkdirAll(r.repDir, 0o755); err != nil {
			return nil, err
		}
		r.fixtures = map[string]*fixture{}
		// Each workload's turns are the engines plus its baseline (a nil
		// entry). Start each repetition with a different turn, so that
		// none always runs right after the same neighbour.
		turns := append(pointers(defs), nil)
		k := (r.rep - 1) % len(turns)
		order := append(slices.Clone(turns[k:]), turns[:k]...)
		for _, w := range wls {
			for _, d := range order {
				switch {
				case d != nil:
					r.runOne(w, *d)
				case w.bare != nil:
					r.runBare(w)
				}
			}
		}
		if err := os.RemoveAll(r.repDir); err != nil {
			return nil, err
		}
	}
	r.res.Finished = time.Now().UTC()
	r.res.Machine.LoadAfter = loadAvg()
	r.res.Machine.OtherCPU = meter.otherShare()
	r.logf("done in %v; other processes used %.0f%% of the CPUs meanwhile",
		r.res.Finished.Sub(r.res.Started).Round(time.Second), 100*r.res.Machine.OtherCPU)
	return r.res, nil
}

// pointers returns pointers to the elements of defs.
func pointers(defs []engineDef) []*engineDef {
	ps := make([]*engineDef, len(defs))
	for i := range defs {
		ps[i] = &defs[i]
	}
	return ps
}

// runOne runs workload w on engine d and records its figures or failure.
func (r *runner) runOne(w workload, d engineDef) {
	if reason, ok := d.na[w.name]; ok {
		if r.rep == 1 {
			r.res.NotApplicable = append(r.res.NotApplicable, Note{Workload: w.name, Engine: d.name, Text: reason})
		}
		return
	}
	settle(r.cfg.Prefault)
	before := len(r.res.Measurements)
	start := time.Now()
	err := w.run(r, d)
	r.report(w.name, d.name, before, time.Since(start), err)
}

// runBare runs workload w's baseline, recorded under the engine name "bare".
func (r *runner) runBare(w workload) {
	settle(r.cfg.Prefault)
	before := len(r.res.Measurements)
	start := time.Now()
	err := w.bare(r)
	r.report(w.name, "bare", before, time.Since(start), err)
}

// report logs the figures recorded since before, or the error.
func (r *runner) report(wname, ename string, before int, took time.Duration, err error) {
	if err != nil {
		r.res.Errors = append(r.res.Errors, Note{Rep: r.rep, Workload: wname, Engine: ename, Text: err.Error()})
		r.logf("[%d/%d] %-14s %-7s ERROR: %v", r.rep, r.cfg.Count, wname, ename, err)
		return
	}
	var parts []string
	for _, m := range r.res.Measurements[before:] {
		parts = append(parts, fmt.Sprintf("%s %s %s", m.Metric, formatValue(m.Value), m.Unit))
	}
	r.logf("[%d/%d] %-14s %-7s %s (%v)", r.rep, r.cfg.Count, wname, ename, strings.Join(parts, ", "), took.Round(time.Millisecond))
}

// settle flushes dirty pages left by the previous turn and collects
// garbage, so that neither is charged to the next measurement. Then it
// touches prefault MiB of fresh memory and gives it back to the kernel:
// on a virtual machine with free page reporting (the published runs'), a
// turn that frees a lot (the previous engine's heap and page cache) lets
// the host take that memory back, and the next turn's new page-cache
// pages fault it in again, page by page: a 1M-key load in key order, 143
// MB of new pages, paid 0.1-0.4 s for it whichever engine ran it (every
// engine's sorted loads ran 1.6-1.8x faster, medians of three, with the
// memory touched first; bench/README.md). Memory just freed is handed out
// first and is not yet reported.
func settle(prefault int) {
	syscall.Sync()
	runtime.GC()
	if prefault <= 0 {
		return
	}
	b := make([]byte, prefault<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	runtime.GC()
	debug.FreeOSMemory()
}

// warm reads every file under dir once, untimed, so that a read workload
// starts with the database in the page cache, as the workloads say it
// does ("warm page cache"). On the VM of the published runs file pages
// left idle leave the page cache even with most of the memory free: a
// 180 MiB database went from 177.8 to 158.4 MiB resident over 75 idle
// seconds (fincore), and a cold-mapping scan of it right after 90 idle
// seconds took 34 ms with 12 major faults, against 10.5 ms when repeated
// at once; scans of a database loaded a minute or more before ran at a
// quarter of their speed in some turns (2026-12-05). Reading brings back
// whatever left, for every engine alike.
func warm(dir string) error {
	buf := make([]byte, 1<<20)
	return filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		if _, err := warmFile(path, buf); err != nil {
			return fmt.Errorf("warm %s: %w", path, err)
		}
		return nil
	})
}

// lseek(2)'s SEEK_DATA and SEEK_HOLE on Linux.
const seekData, seekHole = 3, 4

// warmFile reads the data of the file at path, skipping its holes (an
// LSM's preallocated log is mostly hole: reading it would fill the page
// cache with zeros), and returns how many bytes it read.
func warmFile(path string, buf []byte) (int64, error) {
	f, size, err := openSized(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var read int64
	for off := int64(0); off < size; {
		data, err := f.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			break // nothing but hole from off on
		} else if err != nil {
			data = off // no SEEK_DATA here: read it all
		}
		hole, err := f.Seek(data, seekHole)
		if err != nil || hole <= data {
			hole = size
		}
		for off = data; off < hole; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), hole-off)], off)
			off += int64(n)
			read += int64(n)
			if err == io.EOF {
				return read, nil
			} else if err != nil {
				return read, err
			}
		}
	}
	return read, nil
}

// openSized opens the file at path for reading and returns its size.
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// add records one figure of the current repetition.
func (r *runner) add(workload, engine, metric string, value float64, unit string, samples []float64) {
	r.res.Measurements = append(r.res.Measurements, Measurement{
		Rep: r.rep, Workload: workload, Engine: engine, Metric: metric,
		Value: value, Unit: unit, Samples: samples,
	})
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, format+"\n", args...)
}

// fixture returns the database of the given kind for engine d in this
// repetition, loading it (untimed) if its load workload has not run.
func (r *runner) fixture(d engineDef, kind string) (*fixture, error) {
	if f, ok := r.fixtures[kind+"/"+d.name]; ok {
		return f, nil
	}
	_, f, err := r.load(d, kind)
	return f, err
}

// load builds the fixture of the given kind for engine d in a fresh
// directory and returns the time spent in its commits (open and close are
// not timed: every commit was already synced).
func (r *runner) load(d engineDef, kind string) (time.Duration, *fixture, error) {
	keys, vals, per := r.data.randKeys, r.data.randVals, LoadTxKeys
	switch kind {
	case fxSorted:
		keys, vals = r.data.sortedKeys, r.data.sortedVals
	case fxRandom1k:
		per = SmallTxKeys
	}
	dir := filepath.Join(r.repDir, kind+"-"+d.name)
	if err := os.RemoveAll(dir); err != nil {
		return 0, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, nil, err
	}
	delete(r.fixtures, kind+"/"+d.name)
	e, err := d.open(dir)
	if err != nil {
		return 0, nil, err
	}
	n := r.data.n
	start := time.Now()
	for i := 0; i < n; i += per {
		j := min(i+per, n)
		if err := e.Put(keys[i*KeySize:j*KeySize], vals[i*ValueSize:j*ValueSize]); err != nil {
			e.Close()
			return 0, nil, fmt.Errorf("load %s, tx at key %d: %w", kind, i, err)
		}
	}
	took := time.Since(start)
	if err := e.Close(); err != nil {
		return 0, nil, err
	}
	f := &fixture{dir: dir}
	if f.allocated, f.apparent, err = diskUsage(dir); err != nil {
		return 0, nil, err
	}
	r.fixtures[kind+"/"+d.name] = f
	return took, f, nil
}

// withEngine opens engine d on dir, runs f, and closes the engine.
func withEngine(d engineDef, dir string, f func(Engine) error) error {
	e, err := d.open(dir)
	if err != nil {
		return err
	}
	err = f(e)
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return err
}
