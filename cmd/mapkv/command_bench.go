package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newBenchCmd) }

// benchOptions are the flags of "mapkv bench", named as bbolt's bench
// names them.
type benchOptions struct {
	count, batchSize   int
	keySize, valueSize int
	writeMode          string
	readMode           string
	noSync             bool
	path               string
	work               bool
	seed               uint64
	asJSON             bool
}

// benchPhase is the result of one phase of the benchmark.
type benchPhase struct {
	Ops        int           `json:"ops"`
	Duration   time.Duration `json:"duration_ns"`
	OpsPerSec  float64       `json:"ops_per_sec"`
	LatencyOf  string        `json:"latency_of"` // what one latency sample measures
	P50        time.Duration `json:"p50_ns"`
	P95        time.Duration `json:"p95_ns"`
	P99        time.Duration `json:"p99_ns"`
	Max        time.Duration `json:"max_ns"`
	BytesTotal int64         `json:"bytes"`
}

// benchReport is the output of "mapkv bench --json".
type benchReport struct {
	Count     int        `json:"count"`
	BatchSize int        `json:"batch_size"`
	KeySize   int        `json:"key_size"`
	ValueSize int        `json:"value_size"`
	WriteMode string     `json:"write_mode"`
	ReadMode  string     `json:"read_mode"`
	Sync      bool       `json:"sync"`
	Write     benchPhase `json:"write"`
	Read      benchPhase `json:"read"`
	FileSize  int64      `json:"file_size"`
}

func newBenchCmd(g *globals) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run a quick write and read benchmark",
		Long: `Bench writes --count keys into a fresh database in transactions of
--batch-size keys, in sequential or random key order, then reads them all
back (sequential: a cursor over the bucket; random: Get in random order),
and reports operations per second and latency percentiles: per commit
for writes (a transaction of --batch-size puts, flushed to disk unless
--no-sync), per operation for reads. The database is a temporary file,
removed afterwards, unless --path names one (kept with --work).

This is a quick self-check of the machine and the build. The defaults
finish in a few seconds.`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := interruptible(cmd)
			defer stop()
			r, err := g.bench(ctx, cmd, &o)
			if errors.Is(err, errInterrupted) {
				return exitWith(exitInterrupted, err)
			}
			if err != nil {
				return err
			}
			if o.asJSON {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			printBench(cmd, r)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.count, "count", 100000, "number of keys to write and read")
	f.IntVar(&o.batchSize, "batch-size", 1000, "keys per write transaction (0: all in one)")
	f.IntVar(&o.keySize, "key-size", 16, "bytes per key (at least 8)")
	f.IntVar(&o.valueSize, "value-size", 100, "bytes per value")
	f.StringVar(&o.writeMode, "write-mode", "seq", "key order of writes: seq or rnd")
	f.StringVar(&o.readMode, "read-mode", "seq", "key order of reads: seq (cursor) or rnd (Get)")
	f.BoolVar(&o.noSync, "no-sync", false, "do not flush commits to disk")
	f.StringVar(&o.path, "path", "", "database file to use (default: a temporary file, removed afterwards)")
	f.BoolVar(&o.work, "work", false, "keep the database file afterwards and print its path")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the random key order")
	f.BoolVar(&o.asJSON, "json", false, "print JSON")
	return cmd
}

func (g *globals) bench(ctx context.Context, cmd *cobra.Command, o *benchOptions) (*benchReport, error) {
	switch {
	case o.count < 1:
		return nil, exitWith(exitUsage, fmt.Errorf("--count %d: want at least 1", o.count))
	case o.batchSize < 0:
		return nil, exitWith(exitUsage, fmt.Errorf("--batch-size %d: want 0 or more", o.batchSize))
	case o.keySize < 8 || o.keySize > mapkv.MaxKeySize:
		return nil, exitWith(exitUsage, fmt.Errorf("--key-size %d: want 8 to %d", o.keySize, mapkv.MaxKeySize))
	case o.valueSize < 0 || o.valueSize > mapkv.MaxValueSize:
		return nil, exitWith(exitUsage, fmt.Errorf("--value-size %d: want 0 to %d", o.valueSize, mapkv.MaxValueSize))
	case o.writeMode != "seq" && o.writeMode != "rnd":
		return nil, exitWith(exitUsage, fmt.Errorf("--write-mode %q: want seq or rnd", o.writeMode))
	case o.readMode != "seq" && o.readMode != "rnd":
		return nil, exitWith(exitUsage, fmt.Errorf("--read-mode %q: want seq or rnd", o.readMode))
	}
	batch := o.batchSize
	if batch == 0 || batch > o.count {
		batch = o.count
	}
	path := o.path
	if path == "" {
		dir, err := os.MkdirTemp("", "mapkv-bench-")
		if err != nil {
			return nil, err
		}
		path = dir + "/bench.db"
		if !o.work {
			defer os.RemoveAll(dir)
		}
	} else if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%s exists: bench writes a fresh database", path)
	}
	if o.path != "" && !o.work {
		defer os.Remove(path)
	}
	db, err := g.createDB(path, &mapkv.Options{NoSync: o.noSync})
	if err != nil {
		return nil, err
	}
	defer db.Close()

	r := &benchReport{Count: o.count, BatchSize: batch, KeySize: o.keySize, ValueSize: o.valueSize,
		WriteMode: o.writeMode, ReadMode: o.readMode, Sync: !o.noSync}
	rng := rand.New(rand.NewPCG(o.seed, 0x6d61706b76))
	order := make([]uint64, o.count) // key numbers in write order
	for i := range order {
		order[i] = uint64(i)
	}
	if o.writeMode == "rnd" {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	value := make([]byte, o.valueSize)
	for i := range value {
		value[i] = byte(rng.Uint32())
	}
	key := make([]byte, o.keySize)
	bucket := []byte("bench")

	// Write phase: one latency sample per commit.
	bar := g.newProgress(cmd, "write", false)
	bar.setTotal(int64(o.count))
	lat := make([]time.Duration, 0, (o.count+batch-1)/batch)
	start := time.Now()
	for i := 0; i < o.count; i += batch {
		if ctx.Err() != nil {
			bar.finish()
			return nil, fmt.Errorf("bench %w", errInterrupted)
		}
		t0 := time.Now()
		err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			for _, n := range order[i:min(i+batch, o.count)] {
				benchKey(key, n)
				if err := b.Put(key, value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			bar.finish()
			return nil, inFile(path, err)
		}
		lat = append(lat, time.Since(t0))
		bar.set(int64(min(i+batch, o.count)), int64(o.count))
	}
	r.Write = phase(o.count, time.Since(start), lat, fmt.Sprintf("commit of %d puts", batch))
	r.Write.BytesTotal = int64(o.count) * int64(o.keySize+o.valueSize)
	bar.finish()

	// Read phase: a pass timing every operation for the percentiles,
	// then an untimed pass for the throughput (the clock reads would
	// otherwise weigh on operations this short).
	if o.readMode == "rnd" {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	} else {
		slices.Sort(order)
	}
	lat = make([]time.Duration, 0, o.count)
	var elapsed time.Duration
	err = db.View(func(tx *mapkv.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return errors.New("bench bucket missing after the write phase")
		}
		for pass := 0; pass < 2; pass++ {
			timed := pass == 0
			n := 0
			start := time.Now()
			if o.readMode == "seq" {
				c := b.Cursor()
				t0 := time.Now()
				for k, _ := c.First(); k != nil; k, _ = c.Next() {
					n++
					if timed {
						t1 := time.Now()
						lat = append(lat, t1.Sub(t0))
						t0 = t1
					}
				}
			} else {
				for _, i := range order {
					benchKey(key, i)
					var t0 time.Time
					if timed {
						t0 = time.Now()
					}
					if b.Get(key) != nil {
						n++
					}
					if timed {
						lat = append(lat, time.Since(t0))
					}
				}
			}
			if !timed {
				elapsed = time.Since(start)
			}
			if n != o.count {
				return fmt.Errorf("read %d keys, wrote %d", n, o.count)
			}
			if ctx.Err() != nil {
				return fmt.Errorf("bench %w", errInterrupted)
			}
		}
		return tx.Err()
	})
	if err != nil {
		return nil, inFile(path, err)
	}
	what := "cursor step"
	if o.readMode == "rnd" {
		what = "Get"
	}
	r.Read = phase(o.count, elapsed, lat, what)
	r.Read.BytesTotal = r.Write.BytesTotal
	r.FileSize = db.Stats().FileSize
	if o.work {
		fmt.Fprintf(cmd.ErrOrStderr(), "database kept at %s\n", path)
	}
	return r, nil
}

// benchKey writes key number n into key: big-endian in the last 8 bytes,
// zeros before, so that numeric order is key order.
func benchKey(key []byte, n uint64) {
	clear(key[:len(key)-8])
	binary.BigEndian.PutUint64(key[len(key)-8:], n)
}

// phase summarizes a phase of ops operations taking d, with latency
// samples lat (sorted in place).
func phase(ops int, d time.Duration, lat []time.Duration, what string) benchPhase {
	slices.Sort(lat)
	p := benchPhase{Ops: ops, Duration: d, LatencyOf: what}
	if d > 0 {
		p.OpsPerSec = float64(ops) / d.Seconds()
	}
	if n := len(lat); n > 0 {
		at := func(q float64) time.Duration { return lat[min(n-1, int(q*float64(n)))] }
		p.P50, p.P95, p.P99, p.Max = at(0.50), at(0.95), at(0.99), lat[n-1]
	}
	return p
}

func printBench(cmd *cobra.Command, r *benchReport) {
	out := cmd.OutOrStdout()
	sync := "sync"
	if !r.Sync {
		sync = "no-sync"
	}
	fmt.Fprintf(out, "mapkv bench: %d keys of %d bytes, values of %d bytes, %d keys per transaction, %s\n",
		r.Count, r.KeySize, r.ValueSize, r.BatchSize, sync)
	w := newTable(out)
	fmt.Fprintln(w, "PHASE\tOPS\tTIME\tOPS/S\tMB/S\tP50\tP95\tP99\tMAX\tLATENCY OF")
	for _, p := range []struct {
		name string
		p    benchPhase
	}{{"write " + r.WriteMode, r.Write}, {"read " + r.ReadMode, r.Read}} {
		mbs := float64(p.p.BytesTotal) / 1e6 / max(p.p.Duration.Seconds(), 1e-9)
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\n", p.name, p.p.Ops, humanDuration(p.p.Duration),
			humanCount(p.p.OpsPerSec), mbs, humanDuration(p.p.P50), humanDuration(p.p.P95), humanDuration(p.p.P99),
			humanDuration(p.p.Max), p.p.LatencyOf)
	}
	w.Flush()
	fmt.Fprintf(out, "file size: %s\n", humanBytes(r.FileSize))
}
