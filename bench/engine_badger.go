package bench

import (
	"errors"
	"net"

	badger "github.com/dgraph-io/badger/v4"
)

func init() {
	register(engineDef{
		name:    "badger",
		open:    openBadger,
		version: func() string { return "github.com/dgraph-io/badger/v4 " + modVersion("github.com/dgraph-io/badger/v4") },
		notes: map[string]string{
			"batch":    "concurrent DB.Update; Badger's write pipeline coalesces pending commits into one synced write",
			"snapshot": "DB.Backup (protobuf stream of every pair, not a file image)",
			"scan":     "iterator with PrefetchValues off (values are inline in the LSM)",
		},
	})
}

// badgerEngine runs Badger with its default options plus SyncWrites, so that
// every commit is durable; its logger is silenced.
type badgerEngine struct{ db *badger.DB }

func openBadger(dir string) (Engine, error) {
	db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		return nil, err
	}
	return &badgerEngine{db: db}, nil
}

func (e *badgerEngine) Put(keys, vals []byte) error {
	m, err := checkRecords(keys, vals)
	if err != nil {
		return err
	}
	return e.db.Update(func(txn *badger.Txn) error {
		for i := range m {
			if err := txn.Set(record(keys, i, KeySize), record(vals, i, ValueSize)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *badgerEngine) Delete(keys []byte) error {
	m, err := checkRecords(keys, nil)
	if err != nil {
		return err
	}
	return e.db.Update(func(txn *badger.Txn) error {
		for i := range m {
			if err := txn.Delete(record(keys, i, KeySize)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *badgerEngine) PutConcurrent(key, val []byte) error {
	return e.db.Update(func(txn *badger.Txn) error { return txn.Set(key, val) })
}

func (e *badgerEngine) Get(keys []byte) (found int, sum uint64, err error) {
	m, err := checkRecords(keys, nil)
	if err != nil {
		return 0, 0, err
	}
	err = e.db.View(func(txn *badger.Txn) error {
		for i := range m {
			item, err := txn.Get(keys[i*KeySize : (i+1)*KeySize])
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := item.Value(func(v []byte) error {
				sum += valueSum(v)
				return nil
			}); err != nil {
				return err
			}
			found++
		}
		return nil
	})
	return found, sum, err
}

func (e *badgerEngine) Scan() (count int, sum uint64, err error) {
	err = e.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			kl := len(item.Key())
			if err := item.Value(func(v []byte) error {
				sum += uint64(kl + len(v))
				return nil
			}); err != nil {
				return err
			}
			count++
		}
		return nil
	})
	return count, sum, err
}

func (e *badgerEngine) Snapshot(conn *net.TCPConn) (int64, error) {
	w := &countingWriter{w: conn}
	_, err := e.db.Backup(w, 0)
	return w.n, err
}

func (e *badgerEngine) Close() error { return e.db.Close() }
