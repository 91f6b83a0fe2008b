package bench

import (
	"errors"

	"github.com/cockroachdb/pebble"
)

func init() {
	register(engineDef{
		name:    "pebble",
		open:    openPebble,
		version: func() string { return "github.com/cockroachdb/pebble " + modVersion("github.com/cockroachdb/pebble") },
		notes: map[string]string{
			"batch":      "concurrent DB.Set with pebble.Sync; the commit pipeline groups WAL syncs",
			"get-random": "DB.Get per key against the live database",
		},
		na: map[string]string{
			"snapshot": "Pebble checkpoints to a directory; it has no way to stream a copy",
		},
	})
}

// pebbleEngine runs Pebble with default options; every batch commits with
// pebble.Sync. Its logger is silenced.
type pebbleEngine struct{ db *pebble.DB }

// quietLogger drops Pebble's informational log lines.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }

func openPebble(dir string) (Engine, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, err
	}
	return &pebbleEngine{db: db}, nil
}

func (e *pebbleEngine) Put(keys, vals []byte) error {
	m, err := checkRecords(keys, vals)
	if err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	for i := range m {
		if err := b.Set(record(keys, i, KeySize), record(vals, i, ValueSize), nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

func (e *pebbleEngine) Delete(keys []byte) error {
	m, err := checkRecords(keys, nil)
	if err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	for i := range m {
		if err := b.Delete(record(keys, i, KeySize), nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

func (e *pebbleEngine) PutConcurrent(key, val []byte) error {
	return e.db.Set(key, val, pebble.Sync)
}

func (e *pebbleEngine) Get(keys []byte) (found int, sum uint64, err error) {
	m, err := checkRecords(keys, nil)
	if err != nil {
		return 0, 0, err
	}
	for i := range m {
		v, closer, err := e.db.Get(keys[i*KeySize : (i+1)*KeySize])
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return found, sum, err
		}
		sum += valueSum(v)
		found++
		if err := closer.Close(); err != nil {
			return found, sum, err
		}
	}
	return found, sum, nil
}

func (e *pebbleEngine) Scan() (count int, sum uint64, err error) {
	it, err := e.db.NewIter(nil)
	if err != nil {
		return 0, 0, err
	}
	for it.First(); it.Valid(); it.Next() {
		count++
		sum += uint64(len(it.Key()) + len(it.Value()))
	}
	return count, sum, errors.Join(it.Error(), it.Close())
}

func (e *pebbleEngine) Close() error { return e.db.Close() }
