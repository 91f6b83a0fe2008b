package mapkv_test

// Bad input through the API: every public function given nil, empty,
// oversized or closed arguments returns its sentinel error (or the
// documented nil result) and never panics.

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapkv/mapkv"
)

// relAPICase is one call: run returns the error to test (or nil) and may
// fail the test itself for calls that return no error.
type relAPICase struct {
	name string
	run  func(t *testing.T) error
	want error // nil: run must return nil
	any  bool  // any non-nil error will do (no sentinel applies)
}

func TestAPIBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.db")
	db, err := mapkv.Open(path, &mapkv.Options{PageSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		if _, err := b.CreateBucket([]byte("nested")); err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}

	closedDB, err := mapkv.Open(filepath.Join(dir, "closed.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	closedDB.Close()

	roPath := filepath.Join(dir, "ro.db")
	if d, err := mapkv.Open(roPath, nil); err == nil {
		d.Close()
	}
	roDB, err := mapkv.Open(roPath, &mapkv.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer roDB.Close()

	emptyPath := filepath.Join(dir, "empty.db")
	os.WriteFile(emptyPath, nil, 0o600)

	// A transaction and a bucket handle that have ended.
	closedTx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	staleBucket := closedTx.Bucket([]byte("b"))
	closedTx.Rollback()

	var nilBucket *mapkv.Bucket
	hugeKey := bytes.Repeat([]byte{0xff}, mapkv.MaxKeySize+1)
	hugeValue := make([]byte, mapkv.MaxValueSize+1)
	key := []byte("k")

	// read runs fn in a read transaction on db, update in a write
	// transaction that is rolled back.
	read := func(fn func(tx *mapkv.Tx) error) func(*testing.T) error {
		return func(t *testing.T) error {
			tx, err := db.Begin(false)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			return fn(tx)
		}
	}
	update := func(fn func(tx *mapkv.Tx) error) func(*testing.T) error {
		return func(t *testing.T) error {
			tx, err := db.Begin(true)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			return fn(tx)
		}
	}
	inB := func(fn func(b *mapkv.Bucket) error) func(*testing.T) error {
		return update(func(tx *mapkv.Tx) error { return fn(tx.Bucket([]byte("b"))) })
	}
	inRB := func(fn func(b *mapkv.Bucket) error) func(*testing.T) error {
		return read(func(tx *mapkv.Tx) error { return fn(tx.Bucket([]byte("b"))) })
	}
	isNil := func(what string, v []byte) error {
		if v != nil {
			return errors.New(what + " returned non-nil")
		}
		return nil
	}
	noKeys := func(c *mapkv.Cursor) error {
		if k, _ := c.First(); k != nil {
			return errors.New("First returned a key")
		}
		if k, _ := c.Last(); k != nil {
			return errors.New("Last returned a key")
		}
		if k, _ := c.Seek(nil); k != nil {
			return errors.New("Seek returned a key")
		}
		if k, _ := c.Next(); k != nil {
			return errors.New("Next returned a key")
		}
		if k, _ := c.Prev(); k != nil {
			return errors.New("Prev returned a key")
		}
		return nil
	}

	cases := []relAPICase{
		// Open
		{"Open/empty path", func(t *testing.T) error { d, err := mapkv.Open("", nil); relCloseIf(d); return err }, nil, true},
		{"Open/directory", func(t *testing.T) error { d, err := mapkv.Open(dir, nil); relCloseIf(d); return err }, nil, true},
		{"Open/missing read-only", func(t *testing.T) error {
			d, err := mapkv.Open(filepath.Join(dir, "missing.db"), &mapkv.Options{ReadOnly: true})
			relCloseIf(d)
			return err
		}, fs.ErrNotExist, false},
		{"Open/empty file read-only", func(t *testing.T) error {
			d, err := mapkv.Open(emptyPath, &mapkv.Options{ReadOnly: true})
			relCloseIf(d)
			return err
		}, mapkv.ErrCorrupt, false},
		{"Open/page size not a power of two", func(t *testing.T) error { return relOpenOpts(dir, &mapkv.Options{PageSize: 1000}) }, mapkv.ErrInvalidOptions, false},
		{"Open/page size too small", func(t *testing.T) error { return relOpenOpts(dir, &mapkv.Options{PageSize: 512}) }, mapkv.ErrInvalidOptions, false},
		{"Open/page size too large", func(t *testing.T) error { return relOpenOpts(dir, &mapkv.Options{PageSize: 128 << 10}) }, mapkv.ErrInvalidOptions, false},
		{"Open/negative page size", func(t *testing.T) error { return relOpenOpts(dir, &mapkv.Options{PageSize: -4096}) }, mapkv.ErrInvalidOptions, false},
		{"Open/negative MaxSize", func(t *testing.T) error { return relOpenOpts(dir, &mapkv.Options{MaxSize: -1}) }, mapkv.ErrInvalidOptions, false},
		{"Open/negative Timeout", func(t *testing.T) error { return relOpenOpts(dir, &mapkv.Options{Timeout: -1}) }, mapkv.ErrInvalidOptions, false},
		{"Open/negative InitialSize", func(t *testing.T) error { return relOpenOpts(dir, &mapkv.Options{InitialSize: -1}) }, mapkv.ErrInvalidOptions, false},
		{"Open/negative GrowStep", func(t *testing.T) error { return relOpenOpts(dir, &mapkv.Options{GrowStep: -1}) }, mapkv.ErrInvalidOptions, false},
		{"Open/negative MaxBatchSize", func(t *testing.T) error { return relOpenOpts(dir, &mapkv.Options{MaxBatchSize: -1}) }, mapkv.ErrInvalidOptions, false},
		{"Open/negative SyncThreshold", func(t *testing.T) error { return relOpenOpts(dir, &mapkv.Options{SyncThreshold: -1}) }, mapkv.ErrInvalidOptions, false},
		{"Open/locked, no wait", func(t *testing.T) error { d, err := mapkv.Open(path, nil); relCloseIf(d); return err }, mapkv.ErrTimeout, false},
		{"Open/locked, wait", func(t *testing.T) error {
			start := time.Now()
			d, err := mapkv.Open(path, &mapkv.Options{Timeout: 50 * time.Millisecond})
			relCloseIf(d)
			if time.Since(start) < 50*time.Millisecond {
				t.Errorf("gave up after %v, before the timeout", time.Since(start))
			}
			return err
		}, mapkv.ErrTimeout, false},
		{"Open/read-only beside the writer", func(t *testing.T) error {
			d, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
			relCloseIf(d)
			return err
		}, nil, false},

		// A closed DB
		{"DB closed/View", func(t *testing.T) error { return closedDB.View(func(*mapkv.Tx) error { return nil }) }, mapkv.ErrDatabaseNotOpen, false},
		{"DB closed/Update", func(t *testing.T) error { return closedDB.Update(func(*mapkv.Tx) error { return nil }) }, mapkv.ErrDatabaseNotOpen, false},
		{"DB closed/Batch", func(t *testing.T) error { return closedDB.Batch(func(*mapkv.Tx) error { return nil }) }, mapkv.ErrDatabaseNotOpen, false},
		{"DB closed/Begin read", func(t *testing.T) error { _, err := closedDB.Begin(false); return err }, mapkv.ErrDatabaseNotOpen, false},
		{"DB closed/Begin write", func(t *testing.T) error { _, err := closedDB.Begin(true); return err }, mapkv.ErrDatabaseNotOpen, false},
		{"DB closed/Check", func(t *testing.T) error { return closedDB.Check() }, mapkv.ErrDatabaseNotOpen, false},
		{"DB closed/Close again", func(t *testing.T) error { return closedDB.Close() }, nil, false},
		{"DB closed/Stats", func(t *testing.T) error { closedDB.Stats(); return nil }, nil, false},
		{"DB closed/Path", func(t *testing.T) error {
			if closedDB.Path() == "" {
				return errors.New("empty path")
			}
			return nil
		}, nil, false},

		// Nil functions
		{"View/nil function", func(t *testing.T) error { return db.View(nil) }, mapkv.ErrInvalidOptions, false},
		{"Update/nil function", func(t *testing.T) error { return db.Update(nil) }, mapkv.ErrInvalidOptions, false},
		{"Batch/nil function", func(t *testing.T) error { return db.Batch(nil) }, mapkv.ErrInvalidOptions, false},
		{"ForEachBucket/nil function", read(func(tx *mapkv.Tx) error { return tx.ForEachBucket(nil) }), mapkv.ErrInvalidOptions, false},
		{"Bucket.ForEach/nil function", inRB(func(b *mapkv.Bucket) error { return b.ForEach(nil) }), mapkv.ErrInvalidOptions, false},
		{"WriteTo/nil writer", read(func(tx *mapkv.Tx) error { _, err := tx.WriteTo(nil); return err }), mapkv.ErrInvalidOptions, false},

		// A read-only DB
		{"DB read-only/Update", func(t *testing.T) error { return roDB.Update(func(*mapkv.Tx) error { return nil }) }, mapkv.ErrDatabaseReadOnly, false},
		{"DB read-only/Begin write", func(t *testing.T) error { _, err := roDB.Begin(true); return err }, mapkv.ErrDatabaseReadOnly, false},
		{"DB read-only/Batch", func(t *testing.T) error { return roDB.Batch(func(*mapkv.Tx) error { return nil }) }, mapkv.ErrDatabaseReadOnly, false},
		{"DB read-only/View", func(t *testing.T) error { return roDB.View(func(*mapkv.Tx) error { return nil }) }, nil, false},

		// Managed transactions
		{"Update/Commit inside", func(t *testing.T) error { return db.Update(func(tx *mapkv.Tx) error { return tx.Commit() }) }, mapkv.ErrManagedTx, false},
		{"Update/Rollback inside", func(t *testing.T) error { return db.Update(func(tx *mapkv.Tx) error { return tx.Rollback() }) }, mapkv.ErrManagedTx, false},
		{"View/Rollback inside", func(t *testing.T) error { return db.View(func(tx *mapkv.Tx) error { return tx.Rollback() }) }, mapkv.ErrManagedTx, false},
		{"Batch/Commit inside", func(t *testing.T) error { return db.Batch(func(tx *mapkv.Tx) error { return tx.Commit() }) }, mapkv.ErrManagedTx, false},

		// A read transaction
		{"read tx/CreateBucket", read(func(tx *mapkv.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err }), mapkv.ErrTxNotWritable, false},
		{"read tx/CreateBucketIfNotExists", read(func(tx *mapkv.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("x")); return err }), mapkv.ErrTxNotWritable, false},
		{"read tx/DeleteBucket", read(func(tx *mapkv.Tx) error { return tx.DeleteBucket([]byte("b")) }), mapkv.ErrTxNotWritable, false},
		{"read tx/Commit", read(func(tx *mapkv.Tx) error { return tx.Commit() }), mapkv.ErrTxNotWritable, false},
		{"read tx/Bucket nil", read(func(tx *mapkv.Tx) error {
			if tx.Bucket(nil) != nil {
				return errors.New("Bucket(nil) returned a bucket")
			}
			return nil
		}), nil, false},
		{"read tx/Put", inRB(func(b *mapkv.Bucket) error { return b.Put(key, key) }), mapkv.ErrTxNotWritable, false},
		{"read tx/Delete", inRB(func(b *mapkv.Bucket) error { return b.Delete(key) }), mapkv.ErrTxNotWritable, false},
		{"read tx/nested CreateBucket", inRB(func(b *mapkv.Bucket) error { _, err := b.CreateBucket([]byte("x")); return err }), mapkv.ErrTxNotWritable, false},
		{"read tx/nested DeleteBucket", inRB(func(b *mapkv.Bucket) error { return b.DeleteBucket([]byte("nested")) }), mapkv.ErrTxNotWritable, false},
		{"read tx/NextSequence", inRB(func(b *mapkv.Bucket) error { _, err := b.NextSequence(); return err }), mapkv.ErrTxNotWritable, false},
		{"read tx/SetSequence", inRB(func(b *mapkv.Bucket) error { return b.SetSequence(9) }), mapkv.ErrTxNotWritable, false},
		{"read tx/Cursor.Delete", inRB(func(b *mapkv.Bucket) error { c := b.Cursor(); c.First(); return c.Delete() }), mapkv.ErrTxNotWritable, false},
		{"read tx/Get nil", inRB(func(b *mapkv.Bucket) error { return isNil("Get(nil)", b.Get(nil)) }), nil, false},
		{"read tx/Get huge", inRB(func(b *mapkv.Bucket) error { return isNil("Get(huge)", b.Get(hugeKey)) }), nil, false},
		{"read tx/Get bucket name", inRB(func(b *mapkv.Bucket) error { return isNil("Get(bucket)", b.Get([]byte("nested"))) }), nil, false},
		{"read tx/Seek huge", inRB(func(b *mapkv.Bucket) error { k, _ := b.Cursor().Seek(hugeKey); return isNil("Seek(huge)", k) }), nil, false},
		{"read tx/Range reversed", inRB(func(b *mapkv.Bucket) error {
			for range b.Range([]byte("z"), []byte("a")) {
				return errors.New("a reversed range yielded")
			}
			return nil
		}), nil, false},

		// A write transaction
		{"write tx/CreateBucket nil", update(func(tx *mapkv.Tx) error { _, err := tx.CreateBucket(nil); return err }), mapkv.ErrBucketNameRequired, false},
		{"write tx/CreateBucket empty", update(func(tx *mapkv.Tx) error { _, err := tx.CreateBucket([]byte{}); return err }), mapkv.ErrBucketNameRequired, false},
		{"write tx/CreateBucket huge", update(func(tx *mapkv.Tx) error { _, err := tx.CreateBucket(hugeKey); return err }), mapkv.ErrKeyTooLarge, false},
		{"write tx/CreateBucket exists", update(func(tx *mapkv.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }), mapkv.ErrBucketExists, false},
		{"write tx/CreateBucketIfNotExists nil", update(func(tx *mapkv.Tx) error { _, err := tx.CreateBucketIfNotExists(nil); return err }), mapkv.ErrBucketNameRequired, false},
		{"write tx/CreateBucketIfNotExists huge", update(func(tx *mapkv.Tx) error { _, err := tx.CreateBucketIfNotExists(hugeKey); return err }), mapkv.ErrKeyTooLarge, false},
		{"write tx/DeleteBucket nil", update(func(tx *mapkv.Tx) error { return tx.DeleteBucket(nil) }), mapkv.ErrBucketNameRequired, false},
		{"write tx/DeleteBucket missing", update(func(tx *mapkv.Tx) error { return tx.DeleteBucket([]byte("missing")) }), mapkv.ErrBucketNotFound, false},
		{"write tx/DeleteBucket huge", update(func(tx *mapkv.Tx) error { return tx.DeleteBucket(hugeKey) }), mapkv.ErrBucketNotFound, false},
		{"write tx/Put nil key", inB(func(b *mapkv.Bucket) error { return b.Put(nil, key) }), mapkv.ErrKeyRequired, false},
		{"write tx/Put empty key", inB(func(b *mapkv.Bucket) error { return b.Put([]byte{}, key) }), mapkv.ErrKeyRequired, false},
		{"write tx/Put huge key", inB(func(b *mapkv.Bucket) error { return b.Put(hugeKey, key) }), mapkv.ErrKeyTooLarge, false},
		{"write tx/Put huge value", inB(func(b *mapkv.Bucket) error { return b.Put(key, hugeValue) }), mapkv.ErrValueTooLarge, false},
		{"write tx/Put over a bucket", inB(func(b *mapkv.Bucket) error { return b.Put([]byte("nested"), key) }), mapkv.ErrIncompatibleValue, false},
		{"write tx/Put nil value", inB(func(b *mapkv.Bucket) error {
			if err := b.Put([]byte("e"), nil); err != nil {
				return err
			}
			if v := b.Get([]byte("e")); v == nil || len(v) != 0 {
				return errors.New("a nil value does not read back as empty")
			}
			return nil
		}), nil, false},
		{"write tx/Delete nil key", inB(func(b *mapkv.Bucket) error { return b.Delete(nil) }), mapkv.ErrKeyRequired, false},
		{"write tx/Delete a bucket", inB(func(b *mapkv.Bucket) error { return b.Delete([]byte("nested")) }), mapkv.ErrIncompatibleValue, false},
		{"write tx/Delete missing", inB(func(b *mapkv.Bucket) error { return b.Delete([]byte("missing")) }), nil, false},
		{"write tx/Delete huge", inB(func(b *mapkv.Bucket) error { return b.Delete(hugeKey) }), nil, false},
		{"write tx/CreateBucket over a value", inB(func(b *mapkv.Bucket) error { _, err := b.CreateBucket(key); return err }), mapkv.ErrIncompatibleValue, false},
		{"write tx/CreateBucketIfNotExists over a value", inB(func(b *mapkv.Bucket) error { _, err := b.CreateBucketIfNotExists(key); return err }), mapkv.ErrIncompatibleValue, false},
		{"write tx/DeleteBucket of a value", inB(func(b *mapkv.Bucket) error { return b.DeleteBucket(key) }), mapkv.ErrIncompatibleValue, false},
		{"write tx/nested CreateBucket nil", inB(func(b *mapkv.Bucket) error { _, err := b.CreateBucket(nil); return err }), mapkv.ErrBucketNameRequired, false},
		{"write tx/nested DeleteBucket nil", inB(func(b *mapkv.Bucket) error { return b.DeleteBucket(nil) }), mapkv.ErrBucketNameRequired, false},
		{"write tx/nested Bucket nil", inB(func(b *mapkv.Bucket) error {
			if b.Bucket(nil) != nil {
				return errors.New("Bucket(nil) returned a bucket")
			}
			return nil
		}), nil, false},
		{"write tx/Cursor.Delete unpositioned", inB(func(b *mapkv.Bucket) error { return b.Cursor().Delete() }), mapkv.ErrKeyRequired, false},
		{"write tx/Cursor.Delete on a bucket", inB(func(b *mapkv.Bucket) error {
			c := b.Cursor()
			c.Seek([]byte("nested"))
			return c.Delete()
		}), mapkv.ErrIncompatibleValue, false},
		{"write tx/deleted bucket Put", update(func(tx *mapkv.Tx) error {
			b := tx.Bucket([]byte("b"))
			if err := tx.DeleteBucket([]byte("b")); err != nil {
				return err
			}
			return b.Put(key, key)
		}), mapkv.ErrBucketNotFound, false},
		{"write tx/deleted bucket's child Put", update(func(tx *mapkv.Tx) error {
			c := tx.Bucket([]byte("b")).Bucket([]byte("nested"))
			if err := tx.DeleteBucket([]byte("b")); err != nil {
				return err
			}
			return c.Put(key, key)
		}), mapkv.ErrBucketNotFound, false},
		{"write tx/Commit twice", func(t *testing.T) error {
			tx, err := db.Begin(true)
			if err != nil {
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			return tx.Commit()
		}, mapkv.ErrTxClosed, false},

		// A transaction that has ended
		{"closed tx/Bucket", func(t *testing.T) error {
			if closedTx.Bucket([]byte("b")) != nil {
				return errors.New("returned a bucket")
			}
			return nil
		}, nil, false},
		{"closed tx/CreateBucket", func(t *testing.T) error { _, err := closedTx.CreateBucket([]byte("x")); return err }, mapkv.ErrTxClosed, false},
		{"closed tx/CreateBucketIfNotExists", func(t *testing.T) error { _, err := closedTx.CreateBucketIfNotExists([]byte("x")); return err }, mapkv.ErrTxClosed, false},
		{"closed tx/DeleteBucket", func(t *testing.T) error { return closedTx.DeleteBucket([]byte("b")) }, mapkv.ErrTxClosed, false},
		{"closed tx/ForEachBucket", func(t *testing.T) error {
			return closedTx.ForEachBucket(func([]byte, *mapkv.Bucket) error { return nil })
		}, mapkv.ErrTxClosed, false},
		{"closed tx/Commit", func(t *testing.T) error { return closedTx.Commit() }, mapkv.ErrTxClosed, false},
		{"closed tx/Rollback", func(t *testing.T) error { return closedTx.Rollback() }, mapkv.ErrTxClosed, false},
		{"closed tx/WriteTo", func(t *testing.T) error { _, err := closedTx.WriteTo(&bytes.Buffer{}); return err }, mapkv.ErrTxClosed, false},
		{"closed tx/Check", func(t *testing.T) error { return closedTx.Check(nil) }, mapkv.ErrTxClosed, false},
		{"closed tx/Cursor", func(t *testing.T) error { return noKeys(closedTx.Cursor()) }, nil, false},
		{"closed tx/ID Size Writable", func(t *testing.T) error { closedTx.ID(); closedTx.Size(); closedTx.Writable(); return nil }, nil, false},
		{"closed tx/bucket Get", func(t *testing.T) error { return isNil("Get", staleBucket.Get(key)) }, nil, false},
		{"closed tx/bucket Put", func(t *testing.T) error { return staleBucket.Put(key, key) }, mapkv.ErrTxClosed, false},
		{"closed tx/bucket Delete", func(t *testing.T) error { return staleBucket.Delete(key) }, mapkv.ErrTxClosed, false},
		{"closed tx/bucket Bucket", func(t *testing.T) error {
			if staleBucket.Bucket([]byte("nested")) != nil {
				return errors.New("returned a bucket")
			}
			return nil
		}, nil, false},
		{"closed tx/bucket CreateBucket", func(t *testing.T) error { _, err := staleBucket.CreateBucket([]byte("x")); return err }, mapkv.ErrTxClosed, false},
		{"closed tx/bucket DeleteBucket", func(t *testing.T) error { return staleBucket.DeleteBucket([]byte("nested")) }, mapkv.ErrTxClosed, false},
		{"closed tx/bucket NextSequence", func(t *testing.T) error { _, err := staleBucket.NextSequence(); return err }, mapkv.ErrTxClosed, false},
		{"closed tx/bucket ForEach", func(t *testing.T) error { return staleBucket.ForEach(func(k, v []byte) error { return nil }) }, mapkv.ErrTxClosed, false},
		{"closed tx/bucket Cursor", func(t *testing.T) error { return noKeys(staleBucket.Cursor()) }, nil, false},
		{"closed tx/bucket All", func(t *testing.T) error {
			for range staleBucket.All() {
				return errors.New("yielded")
			}
			return nil
		}, nil, false},
		{"closed tx/bucket Stats", func(t *testing.T) error { staleBucket.Stats(); return nil }, nil, false},

		// A nil *Bucket, as tx.Bucket returns for a missing name
		{"nil bucket/Get", func(t *testing.T) error { return isNil("Get", nilBucket.Get(key)) }, nil, false},
		{"nil bucket/Put", func(t *testing.T) error { return nilBucket.Put(key, key) }, mapkv.ErrBucketNotFound, false},
		{"nil bucket/Delete", func(t *testing.T) error { return nilBucket.Delete(key) }, mapkv.ErrBucketNotFound, false},
		{"nil bucket/Bucket", func(t *testing.T) error {
			if nilBucket.Bucket(key) != nil {
				return errors.New("returned a bucket")
			}
			return nil
		}, nil, false},
		{"nil bucket/CreateBucket", func(t *testing.T) error { _, err := nilBucket.CreateBucket(key); return err }, mapkv.ErrBucketNotFound, false},
		{"nil bucket/CreateBucketIfNotExists", func(t *testing.T) error { _, err := nilBucket.CreateBucketIfNotExists(key); return err }, mapkv.ErrBucketNotFound, false},
		{"nil bucket/DeleteBucket", func(t *testing.T) error { return nilBucket.DeleteBucket(key) }, mapkv.ErrBucketNotFound, false},
		{"nil bucket/NextSequence", func(t *testing.T) error { _, err := nilBucket.NextSequence(); return err }, mapkv.ErrBucketNotFound, false},
		{"nil bucket/ForEach", func(t *testing.T) error { return nilBucket.ForEach(func(k, v []byte) error { return nil }) }, mapkv.ErrBucketNotFound, false},
		{"nil bucket/Cursor", func(t *testing.T) error { return noKeys(nilBucket.Cursor()) }, nil, false},
		{"nil bucket/All", func(t *testing.T) error {
			for range nilBucket.All() {
				return errors.New("yielded")
			}
			return nil
		}, nil, false},
		{"nil bucket/Stats", func(t *testing.T) error { nilBucket.Stats(); return nil }, nil, false},
		{"nil bucket/Writable Sequence Tx", func(t *testing.T) error {
			nilBucket.Writable()
			nilBucket.Sequence()
			nilBucket.Tx()
			return nil
		}, nil, false},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			panicked := true
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("panicked: %v", r)
					}
				}()
				err = c.run(t)
				panicked = false
			}()
			if panicked {
				return
			}
			switch {
			case c.any:
				if err == nil {
					t.Errorf("returned nil, want an error")
				}
			case c.want == nil:
				if err != nil {
					t.Errorf("returned %v, want nil", err)
				}
			case !errors.Is(err, c.want):
				t.Errorf("returned %v, want %v", err, c.want)
			case !strings.HasPrefix(err.Error(), "mapkv: ") && c.want != fs.ErrNotExist:
				t.Errorf("message %q lacks the mapkv: prefix", err)
			}
		})
	}
	if err := db.Check(); err != nil {
		t.Fatalf("after the bad calls: %v", err)
	}
}

func relCloseIf(db *mapkv.DB) {
	if db != nil {
		db.Close()
	}
}

// relOpenOpts opens a new file in dir with o and closes it.
func relOpenOpts(dir string, o *mapkv.Options) error {
	d, err := mapkv.Open(filepath.Join(dir, "opts.db"), o)
	relCloseIf(d)
	return err
}
