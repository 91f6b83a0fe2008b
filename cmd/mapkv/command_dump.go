package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newDumpCmd) }

func newDumpCmd(g *globals) *cobra.Command {
	var print bool
	var file string
	cmd := &cobra.Command{
		Use:   "dump DB [BUCKET...]",
		Short: "Write buckets in the text format of mdb_dump and db_dump",
		Long: `Dump writes every bucket (or the named buckets and the buckets nested in
them) in the text format of LMDB's mdb_dump: one section per bucket,
named "database=PATH" by its bucket path ("a/b" for b inside a), sections
in order of their names, keys in key order. mdb_load reads it ("mdb_load
-n -f dump.txt lmdb.mdb"), and so does "mapkv load".

The format is bytevalue (hex) unless --print asks for printable bytes as
they are. A bucket's sequence number, when not 0, is kept in a
"sequence=N" header line, which mdb_load skips with a warning.`,
		Args:              usageArgs(1, -1),
		ValidArgsFunction: g.completeBuckets,
		RunE: func(cmd *cobra.Command, args []string) error {
			var only [][][]byte
			for _, a := range args[1:] {
				p, err := parsePath(a)
				if err != nil {
					return err
				}
				only = append(only, p)
			}
			db, err := g.openDB(args[0], false)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx, stop := interruptible(cmd)
			defer stop()
			err = writeOutput(cmd, file, func(w io.Writer) error {
				return g.dump(ctx, cmd, db, only, w, print)
			})
			if errors.Is(err, errInterrupted) {
				return exitWith(exitInterrupted, err)
			}
			return inFile(args[0], err)
		},
	}
	cmd.Flags().BoolVarP(&print, "print", "p", false, "print format: printable bytes as they are (mdb_dump -p)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "write to this file (through a temporary file renamed at the end) instead of standard output")
	return cmd
}

// dump writes the buckets at the paths in only (all when empty), with
// the buckets nested in them, to w.
func (g *globals) dump(ctx context.Context, cmd *cobra.Command, db *mapkv.DB, only [][][]byte, w io.Writer, print bool) error {
	return db.View(func(tx *mapkv.Tx) error {
		type section struct {
			name string
			path [][]byte
		}
		var secs []section
		seen := map[string]bool{}
		add := func(p [][]byte, _ *mapkv.Bucket) error {
			if name := formatPath(p); !seen[name] {
				seen[name] = true
				secs = append(secs, section{name, p})
			}
			return nil
		}
		var total int64
		bar := g.newProgress(cmd, "dump", false)
		defer bar.finish()
		if len(only) == 0 {
			if err := walkBuckets(tx, nil, nil, add); err != nil {
				return err
			}
			if bar.on {
				tx.ForEachBucket(func(_ []byte, b *mapkv.Bucket) error {
					total += int64(b.Stats().KeyN)
					return nil
				})
			}
		}
		for _, p := range only {
			b, err := bucketAt(tx, p)
			if err != nil {
				return err
			}
			add(p, b)
			if err := walkBuckets(tx, b, p, add); err != nil {
				return err
			}
			if bar.on {
				total += int64(b.Stats().KeyN)
			}
		}
		// Sections go in order of their names, as mdb_dump -a lists the
		// databases of an LMDB file, so that a round trip through LMDB
		// gives back the same bytes.
		sort.Slice(secs, func(i, j int) bool { return secs[i].name < secs[j].name })
		d := newDumpWriter(w, print)
		var done int64
		for _, s := range secs {
			b, err := bucketAt(tx, s.path)
			if err != nil {
				return err
			}
			d.header(s.name, b.Sequence())
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if v == nil {
					continue // a nested bucket: its own section
				}
				d.record(k, v)
				done++
				if done&1023 == 0 {
					bar.set(done, total)
					if ctx.Err() != nil {
						return fmt.Errorf("dump %w after %d keys", errInterrupted, done)
					}
				}
			}
			if err := tx.Err(); err != nil {
				return err
			}
			d.end()
		}
		if err := d.flush(); err != nil {
			return fmt.Errorf("writing the dump: %w", err)
		}
		return nil
	})
}
