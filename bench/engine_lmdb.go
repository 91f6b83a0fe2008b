package bench

import (
	"net"

	"github.com/mapkv/mapkv/bench/internal/lmdb"
)

// lmdbMapSize is the LMDB map size: far above any database the benchmark
// builds. Without MDB_WRITEMAP the data file grows only as pages are used.
const lmdbMapSize = 64 << 30

func init() {
	register(engineDef{
		name:    "lmdb",
		open:    openLMDB,
		file:    "data.mdb",
		version: lmdb.Version,
		notes: map[string]string{
			"batch":      "no group commit: one synced write transaction per key, serialized on the writer thread",
			"get-random": "whole lookup loop in C (best case: no cgo call per key)",
			"scan":       "whole cursor loop in C",
			"snapshot":   "mdb_env_copyfd to the socket",
		},
	})
}

// lmdbEngine runs LMDB through the cgo shim in internal/lmdb, with default
// (durable) sync flags plus MDB_NOTLS.
type lmdbEngine struct{ env *lmdb.Env }

func openLMDB(dir string) (Engine, error) {
	env, err := lmdb.Open(dir, lmdbMapSize)
	if err != nil {
		return nil, err
	}
	return &lmdbEngine{env: env}, nil
}

func (e *lmdbEngine) Put(keys, vals []byte) error {
	if _, err := checkRecords(keys, vals); err != nil {
		return err
	}
	return e.env.Put(keys, KeySize, vals, ValueSize)
}

func (e *lmdbEngine) Delete(keys []byte) error {
	if _, err := checkRecords(keys, nil); err != nil {
		return err
	}
	return e.env.Delete(keys, KeySize)
}

func (e *lmdbEngine) PutConcurrent(key, val []byte) error {
	return e.env.Put(key, KeySize, val, ValueSize)
}

func (e *lmdbEngine) Get(keys []byte) (int, uint64, error) {
	if _, err := checkRecords(keys, nil); err != nil {
		return 0, 0, err
	}
	return e.env.Get(keys, KeySize)
}

func (e *lmdbEngine) Scan() (int, uint64, error) { return e.env.Scan() }

// Snapshot streams the data file with mdb_env_copyfd. The socket is
// duplicated and switched to blocking mode first, since LMDB writes with
// plain write(2).
func (e *lmdbEngine) Snapshot(conn *net.TCPConn) (int64, error) {
	f, err := conn.File()
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fd := f.Fd() // Fd puts the descriptor in blocking mode.
	if err := e.env.CopyFD(fd); err != nil {
		return 0, err
	}
	return -1, nil // size unknown to the caller; the receiver counts it.
}

func (e *lmdbEngine) Close() error { return e.env.Close() }
