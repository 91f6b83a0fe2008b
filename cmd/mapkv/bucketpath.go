package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mapkv/mapkv"
)

// Bucket paths name nested buckets: "a/b/c" is bucket c inside b inside
// the top-level bucket a. Inside a name, "\/" is a slash, "\\" a
// backslash and "\xHH" any byte, so every name has a path. formatPath
// writes the canonical form, which parsePath reads back; it is also the
// database name in dumps.

// parsePath splits a bucket path into bucket names.
func parsePath(s string) ([][]byte, error) {
	if s == "" {
		return nil, errors.New("empty bucket path")
	}
	var names [][]byte
	var cur []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			if len(cur) == 0 {
				return nil, fmt.Errorf("bucket path %q: empty bucket name", s)
			}
			names = append(names, cur)
			cur = nil
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("bucket path %q: trailing backslash", s)
			}
			switch s[i+1] {
			case '/', '\\':
				cur = append(cur, s[i+1])
				i++
			case 'x':
				if i+4 > len(s) {
					return nil, fmt.Errorf("bucket path %q: \\x wants two hex digits", s)
				}
				v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
				if err != nil {
					return nil, fmt.Errorf("bucket path %q: \\x wants two hex digits", s)
				}
				cur = append(cur, byte(v))
				i += 3
			default:
				return nil, fmt.Errorf("bucket path %q: unknown escape \\%c (use \\/, \\\\ or \\xHH)", s, s[i+1])
			}
		default:
			cur = append(cur, c)
		}
	}
	if len(cur) == 0 {
		return nil, fmt.Errorf("bucket path %q: empty bucket name", s)
	}
	return append(names, cur), nil
}

// formatName escapes one bucket name for use in a path: printable
// characters stay as they are, except '/' and '\'; every other byte is
// written \xHH.
func formatName(name []byte) string {
	var b strings.Builder
	for len(name) > 0 {
		r, n := utf8.DecodeRune(name)
		switch {
		case r == '/' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == utf8.RuneError && n <= 1 || !unicode.IsPrint(r):
			for _, c := range name[:n] {
				fmt.Fprintf(&b, "\\x%02x", c)
			}
		default:
			b.Write(name[:n])
		}
		name = name[n:]
	}
	return b.String()
}

// formatPath joins escaped names with '/'.
func formatPath(names [][]byte) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = formatName(n)
	}
	return strings.Join(parts, "/")
}

// bucketAt returns the bucket at path, or an error naming the first part
// of the path that does not exist.
func bucketAt(tx *mapkv.Tx, path [][]byte) (*mapkv.Bucket, error) {
	var b *mapkv.Bucket
	for i, name := range path {
		if i == 0 {
			b = tx.Bucket(name)
		} else {
			b = b.Bucket(name)
		}
		if b == nil {
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("bucket %s: not found", formatPath(path[:i+1]))
		}
	}
	return b, nil
}

// createBucketAt returns the bucket at path, creating every missing part.
func createBucketAt(tx *mapkv.Tx, path [][]byte) (*mapkv.Bucket, error) {
	var b *mapkv.Bucket
	var err error
	for i, name := range path {
		if i == 0 {
			b, err = tx.CreateBucketIfNotExists(name)
		} else {
			b, err = b.CreateBucketIfNotExists(name)
		}
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", formatPath(path[:i+1]), err)
		}
	}
	return b, nil
}

// walkBuckets calls fn for every bucket nested in b (b nil: every bucket
// of tx), depth first in key order, with its full path. prefix is b's path.
func walkBuckets(tx *mapkv.Tx, b *mapkv.Bucket, prefix [][]byte, fn func(path [][]byte, b *mapkv.Bucket) error) error {
	visit := func(name []byte, child *mapkv.Bucket) error {
		if child == nil {
			if err := tx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("bucket %s: cannot be opened", formatPath(append(prefix, name)))
		}
		path := append(append([][]byte(nil), prefix...), append([]byte(nil), name...))
		if err := fn(path, child); err != nil {
			return err
		}
		return walkBuckets(tx, child, path, fn)
	}
	if b == nil {
		if err := tx.ForEachBucket(visit); err != nil {
			return err
		}
		return tx.Err()
	}
	err := b.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		return visit(k, b.Bucket(k))
	})
	if err != nil {
		return err
	}
	return tx.Err()
}
