package bench

import (
	"errors"
	"net"
	"path/filepath"

	"github.com/mapkv/mapkv"
)

func init() {
	register(engineDef{
		name:    "mapkv",
		open:    openMapkv,
		file:    "data.mapkv",
		version: func() string { return "github.com/mapkv/mapkv (this repository)" },
		notes: map[string]string{
			"batch":    "DB.Batch",
			"snapshot": "Tx.WriteTo",
		},
	})
}

// mapkvEngine runs mapkv with its durable defaults (NoSync false).
type mapkvEngine struct{ db *mapkv.DB }

func openMapkv(dir string) (Engine, error) {
	db, err := mapkv.Open(filepath.Join(dir, "data.mapkv"), &mapkv.Options{NoSync: false})
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *mapkv.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &mapkvEngine{db: db}, nil
}

func (e *mapkvEngine) Put(keys, vals []byte) error {
	m, err := checkRecords(keys, vals)
	if err != nil {
		return err
	}
	return e.db.Update(func(tx *mapkv.Tx) error {
		b := tx.Bucket(boltBucket)
		for i := range m {
			if err := b.Put(record(keys, i, KeySize), record(vals, i, ValueSize)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *mapkvEngine) Delete(keys []byte) error {
	m, err := checkRecords(keys, nil)
	if err != nil {
		return err
	}
	return e.db.Update(func(tx *mapkv.Tx) error {
		b := tx.Bucket(boltBucket)
		for i := range m {
			if err := b.Delete(record(keys, i, KeySize)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *mapkvEngine) PutConcurrent(key, val []byte) error {
	return e.db.Batch(func(tx *mapkv.Tx) error {
		return tx.Bucket(boltBucket).Put(key, val)
	})
}

func (e *mapkvEngine) Get(keys []byte) (found int, sum uint64, err error) {
	m, err := checkRecords(keys, nil)
	if err != nil {
		return 0, 0, err
	}
	err = e.db.View(func(tx *mapkv.Tx) error {
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

func (e *mapkvEngine) Scan() (count int, sum uint64, err error) {
	err = e.db.View(func(tx *mapkv.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			count++
			sum += uint64(len(k) + len(v))
		}
		return nil
	})
	return count, sum, err
}

func (e *mapkvEngine) Snapshot(conn *net.TCPConn) (int64, error) {
	tx, err := e.db.Begin(false)
	if err != nil {
		return 0, err
	}
	n, err := tx.WriteTo(conn)
	return n, errors.Join(err, tx.Rollback())
}

func (e *mapkvEngine) Close() error { return e.db.Close() }
