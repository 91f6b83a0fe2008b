package mapkv_test

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mapkv/mapkv"
)

// TestFaultWrite makes the write of a commit's pages fail: the commit
// returns the error, the database stays readable at the previous commit,
// refuses further writes until reopened, and reopens at that commit.
func TestFaultWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := mapkv.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	put := func(k string) error {
		return db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte(k), []byte("v"))
		})
	}
	if err := put("before"); err != nil {
		t.Fatal(err)
	}
	restore := mapkv.SetWriteHook(func(*mapkv.DB, int64, int) error { return syscall.EIO })
	err = put("during")
	restore()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("commit with a failing write: %v, want EIO", err)
	}
	if err := put("after"); !errors.Is(err, mapkv.ErrFailed) {
		t.Fatalf("write after a failed write: %v, want ErrFailed", err)
	}
	check := func(db *mapkv.DB) {
		t.Helper()
		if err := db.View(func(tx *mapkv.Tx) error {
			b := tx.Bucket([]byte("b"))
			if b.Get([]byte("before")) == nil || b.Get([]byte("during")) != nil {
				return errors.New("state is not the last acknowledged commit")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		mustCheck(t, db)
	}
	check(db)
	db.Close()
	db, err = mapkv.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db)
	if err := put("after"); err != nil {
		t.Fatalf("write after reopening: %v", err)
	}
}

// TestFaultOpenSync makes Open's flush fail: Open returns the error and
// nothing is lost; the next Open works.
func TestFaultOpenSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	db := mustOpen(t, path, nil)
	writeGeneration(db, 7)
	db.Close()
	restore := mapkv.SetOpenSyncHook(func(*mapkv.DB, func() error) error { return syscall.EIO })
	_, err := mapkv.Open(path, nil)
	restore()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Open with a failing flush: %v, want EIO", err)
	}
	db = mustOpen(t, path, nil)
	if err := db.View(func(tx *mapkv.Tx) error {
		gen, err := readGeneration(tx)
		if err == nil && gen != "00000007" {
			err = errors.New("wrong generation " + gen)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
