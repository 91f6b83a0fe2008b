package mapkv

import (
	"errors"
	"fmt"

	"github.com/mapkv/mapkv/page"
)

// Sentinel errors. Test for them with errors.Is: most are returned wrapped
// with context (which file, which page).
var (
	// ErrDatabaseNotOpen is returned when using a DB that was closed.
	ErrDatabaseNotOpen = errors.New("mapkv: database not open")
	// ErrDatabaseReadOnly is returned when starting a write transaction on
	// a DB opened with Options.ReadOnly.
	ErrDatabaseReadOnly = errors.New("mapkv: database is read-only")
	// ErrTimeout is returned by Open when the file lock is not granted
	// within Options.Timeout.
	ErrTimeout = errors.New("mapkv: timeout waiting for the file lock")
	// ErrTxClosed is returned when using a transaction after Commit or
	// Rollback.
	ErrTxClosed = errors.New("mapkv: transaction closed")
	// ErrTxNotWritable is returned when writing in a read-only transaction.
	ErrTxNotWritable = errors.New("mapkv: transaction not writable")
	// ErrBucketNotFound is returned when a bucket does not exist.
	ErrBucketNotFound = errors.New("mapkv: bucket not found")
	// ErrBucketExists is returned by CreateBucket for an existing bucket.
	ErrBucketExists = errors.New("mapkv: bucket already exists")
	// ErrBucketNameRequired is returned for an empty or nil bucket name.
	ErrBucketNameRequired = errors.New("mapkv: bucket name required")
	// ErrKeyRequired is returned for an empty or nil key.
	ErrKeyRequired = errors.New("mapkv: key required")
	// ErrKeyTooLarge is returned for a key longer than MaxKeySize.
	ErrKeyTooLarge = errors.New("mapkv: key too large")
	// ErrValueTooLarge is returned for a value longer than MaxValueSize.
	ErrValueTooLarge = errors.New("mapkv: value too large")
	// ErrIncompatibleValue is returned when a key names a bucket where a
	// value is expected, or a value where a bucket is expected.
	ErrIncompatibleValue = errors.New("mapkv: incompatible value")
	// ErrCorrupt marks damage found in the file: a bad checksum, a page
	// outside the file, a broken tree. It is wrapped with where and what.
	ErrCorrupt = errors.New("mapkv: database corrupt")
	// ErrRecoveryNeeded is returned by a read-only Open when the
	// write-ahead log holds commits that only a read-write Open can
	// replay into the data file (the writer stopped without Close and no
	// writer is running).
	ErrRecoveryNeeded = errors.New("mapkv: database needs recovery")
	// ErrFailed is returned by write operations after a flush of the file
	// failed: the state of the file on disk is unknown until the database
	// is reopened, so no further commit is attempted.
	ErrFailed = errors.New("mapkv: an earlier flush failed; reopen the database")
	// ErrTooManyReaders is returned by Begin when the reader table is full.
	ErrTooManyReaders = errors.New("mapkv: too many open read transactions")
	// ErrInvalidOptions is returned by Open for options it cannot honour.
	ErrInvalidOptions = errors.New("mapkv: invalid options")
)

// corruptError is a corruption found at a place in a file. It matches
// ErrCorrupt with errors.Is and unwraps to its cause.
type corruptError struct {
	path string
	err  error
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("mapkv: %s: database corrupt: %v", e.path, e.err)
}

func (e *corruptError) Unwrap() []error { return []error{ErrCorrupt, e.err} }

func corrupt(path string, err error) error {
	var ce *corruptError
	if errors.As(err, &ce) {
		return err
	}
	return &corruptError{path: path, err: err}
}

var errTooDeep = fmt.Errorf("%w: tree or nesting deeper than the format allows (a loop?)", ErrCorrupt)

func elemErr(id page.ID, i int) error {
	return fmt.Errorf("%w: page %d: element %d does not fit the node", ErrCorrupt, id, i)
}
