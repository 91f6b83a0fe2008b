package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/mapkv/mapkv"
)

// openDB opens the existing database at path, read-only unless write. A
// missing file is an error: no command creates a database by opening it
// (load and put --create say so explicitly with createDB).
func (g *globals) openDB(path string, write bool) (*mapkv.DB, error) {
	if err := mustExist(path); err != nil {
		return nil, err
	}
	return g.open(path, &mapkv.Options{ReadOnly: !write})
}

// createDB opens the database at path for writing, creating it if needed.
func (g *globals) createDB(path string, opts *mapkv.Options) (*mapkv.DB, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	return g.open(path, opts)
}

func (g *globals) open(path string, opts *mapkv.Options) (*mapkv.DB, error) {
	o := *opts
	o.Timeout = g.timeout
	db, err := mapkv.Open(path, &o)
	if err != nil {
		return nil, openError(path, err, g)
	}
	return db, nil
}

// mustExist returns a one-line error unless path is an existing file.
func mustExist(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such file", path)
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s: is a directory, not a mapkv file", path)
	}
	return nil
}

// openError rewords the errors of mapkv.Open that an operator meets most.
func openError(path string, err error, g *globals) error {
	if errors.Is(err, mapkv.ErrTimeout) {
		return &wrapped{
			msg: fmt.Sprintf("%s: locked by another process (waited %v for the file lock; use --timeout to wait longer)", path, g.timeout),
			err: err,
		}
	}
	if errors.Is(err, mapkv.ErrRecoveryNeeded) {
		return &wrapped{
			msg: fmt.Sprintf("%s: needs recovery: a writer stopped without closing it and left commits in %s-wal; run \"mapkv recover %s\" (or start the application) to replay them", path, path, path),
			err: err,
		}
	}
	return err
}

// wrapped is an error with its own message that still matches its cause
// with errors.Is.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// inFile adds the file's name to err unless its message already has it.
func inFile(path string, err error) error {
	if err == nil || strings.Contains(err.Error(), path) {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}
