package bench

import (
	"errors"
	"net"
	"path/filepath"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

func init() {
	register(engineDef{
		name:    "bbolt",
		open:    openBolt,
		file:    "bolt.db",
		version: func() string { return "go.etcd.io/bbolt " + modVersion("go.etcd.io/bbolt") },
		notes: map[string]string{
			"batch":    "DB.Batch (default MaxBatchDelay 10ms, MaxBatchSize 1000)",
			"snapshot": "Tx.WriteTo",
		},
	})
}

// boltBucket is the one bucket the bbolt and mapkv adapters use.
var boltBucket = []byte("b")

// boltEngine runs bbolt with its default options: NoSync false, so every
// commit fdatasyncs.
type boltEngine struct{ db *bolt.DB }

func openBolt(dir string) (Engine, error) {
	db, err := bolt.Open(filepath.Join(dir, "bolt.db"), 0o644, nil)
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &boltEngine{db: db}, nil
}

func (e *boltEngine) Put(keys, vals []byte) error {
	m, err := checkRecords(keys, vals)
	if err != nil {
		return err
	}
	return e.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		for i := range m {
			if err := b.Put(record(keys, i, KeySize), record(vals, i, ValueSize)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *boltEngine) Delete(keys []byte) error {
	m, err := checkRecords(keys, nil)
	if err != nil {
		return err
	}
	return e.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		for i := range m {
			if err := b.Delete(record(keys, i, KeySize)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *boltEngine) PutConcurrent(key, val []byte) error {
	return e.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).Put(key, val)
	})
}

func (e *boltEngine) Get(keys []byte) (found int, sum uint64, err error) {
	m, err := checkRecords(keys, nil)
	if err != nil {
		return 0, 0, err
	}
	err = e.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		for i := range m {
			if v := b.Get(keys[i*KeySize : (i+1)*KeySize]); v != nil {
				found++
				sum += valueSum(v)
			}
		}
		return nil
	})
	return found, sum, err
}

func (e *boltEngine) Scan() (count int, sum uint64, err error) {
	err = e.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			count++
			sum += uint64(len(k) + len(v))
		}
		return nil
	})
	return count, sum, err
}

func (e *boltEngine) Snapshot(conn *net.TCPConn) (int64, error) {
	tx, err := e.db.Begin(false)
	if err != nil {
		return 0, err
	}
	n, err := tx.WriteTo(conn)
	return n, errors.Join(err, tx.Rollback())
}

func (e *boltEngine) Close() error { return e.db.Close() }

// valueSum folds a value's length and first byte into a checksum, so that a
// lookup cannot skip reading the value.
func valueSum(v []byte) uint64 {
	if len(v) == 0 {
		return 0
	}
	return uint64(len(v)) + uint64(v[0])
}

// modVersion reports the version of module path linked into this binary.
func modVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				if m.Replace != nil {
					return m.Version + " => " + m.Replace.Path
				}
				return m.Version
			}
		}
	}
	return "(unknown)"
}
