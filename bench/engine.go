package bench

import (
	"fmt"
	"net"
)

// KeySize and ValueSize are the sizes of every key and value the workloads
// write: 16-byte random keys and 100-byte random values.
const (
	KeySize   = 16
	ValueSize = 100
)

// Engine is one key-value store under test, open on one directory. Key and
// value arguments are fixed-size records packed back to back: m keys are
// m*KeySize bytes, m values m*ValueSize bytes. An engine may keep references
// to them until it is closed; the harness never changes them.
//
// Every write is durable when it returns (a synced commit): that is each
// engine's durable default, and the point of comparing them.
type Engine interface {
	// Put stores keys[i] -> vals[i] for every i in one synced transaction.
	Put(keys, vals []byte) error
	// Delete removes every key in one synced transaction.
	Delete(keys []byte) error
	// PutConcurrent stores one pair durably. It is called from several
	// goroutines at once and goes through the engine's group commit where
	// it has one.
	PutConcurrent(key, val []byte) error
	// Get looks up every key in one read transaction (or the engine's
	// equivalent) and returns how many it found, plus a checksum of the
	// values (length and first byte) so that each value is really read.
	// Safe for concurrent use, also with writers.
	Get(keys []byte) (found int, sum uint64, err error)
	// Scan reads every pair in key order in one read transaction and
	// returns their number and the sum of key and value lengths.
	Scan() (count int, sum uint64, err error)
	// Close closes the store; its files stay on disk.
	Close() error
}

// Snapshotter is an Engine that can stream a consistent copy of the whole
// database to a connection (mapkv and bbolt: Tx.WriteTo).
type Snapshotter interface {
	// Snapshot writes the copy to conn and returns the bytes written.
	Snapshot(conn *net.TCPConn) (int64, error)
}

// engineDef describes how to open one engine and what its mechanisms are
// called, for the report.
type engineDef struct {
	name string
	// open opens or creates the store in dir, which exists.
	open func(dir string) (Engine, error)
	// file names the single data file inside dir, for engines that have
	// one; the bare-sendfile baseline streams it.
	file string
	// version reports the library version, for the report.
	version func() string
	// notes says, per workload, which mechanism the engine uses where it
	// is not obvious (group commit, snapshot method).
	notes map[string]string
	// na says, per workload, why the engine has no equivalent of it; the
	// workload is skipped for the engine.
	na map[string]string
}

// engineOrder is the canonical order of engines in reports and runs.
var engineOrder = []string{"mapkv", "bbolt", "lmdb", "badger", "pebble"}

// registry holds the engines compiled into this binary, by name.
var registry = map[string]engineDef{}

func register(d engineDef) {
	if _, dup := registry[d.name]; dup {
		panic("kvbench: engine registered twice: " + d.name)
	}
	registry[d.name] = d
}

// Engines returns the names of the engines compiled into this binary, in
// canonical order.
func Engines() []string {
	var names []string
	for _, n := range engineOrder {
		if _, ok := registry[n]; ok {
			names = append(names, n)
		}
	}
	return names
}

// lookupEngines resolves names to definitions in canonical order.
func lookupEngines(names []string) ([]engineDef, error) {
	seen := map[string]bool{}
	for _, n := range names {
		if _, ok := registry[n]; !ok {
			return nil, fmt.Errorf("unknown or not compiled-in engine %q (have %v)", n, Engines())
		}
		seen[n] = true
	}
	var defs []engineDef
	for _, n := range engineOrder {
		if seen[n] {
			defs = append(defs, registry[n])
		}
	}
	return defs, nil
}

// checkRecords reports an error unless keys (and vals, if not nil) hold a
// whole number of records of the same count.
func checkRecords(keys, vals []byte) (int, error) {
	if len(keys)%KeySize != 0 {
		return 0, fmt.Errorf("key buffer of %d bytes is not a multiple of %d", len(keys), KeySize)
	}
	m := len(keys) / KeySize
	if vals != nil && len(vals) != m*ValueSize {
		return 0, fmt.Errorf("%d keys but %d value bytes", m, len(vals))
	}
	return m, nil
}

// record returns the i-th record of size sz in buf.
func record(buf []byte, i, sz int) []byte {
	return buf[i*sz : (i+1)*sz : (i+1)*sz]
}
