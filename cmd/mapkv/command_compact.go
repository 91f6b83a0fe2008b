package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newCompactCmd) }

// compactReport is what compact prints.
type compactReport struct {
	Src, Dst           string
	SrcSize, DstSize   int64
	SrcPages, DstPages uint64
	SrcFree            uint64
	Keys, Buckets      int64
	Txs                int
}

func newCompactCmd(g *globals) *cobra.Command {
	var txMax int64
	var force bool
	cmd := &cobra.Command{
		Use:   "compact SRC DST",
		Short: "Write a compacted copy of a database: only live data, pages filled in order",
		Long: `Compact copies every bucket, key and sequence number of SRC, read in one
read-only transaction, into a new file DST, in key order, so that its
pages are full and contiguous and it holds no free pages. DST is written
as a temporary file beside it and renamed into place only when complete:
an error or an interruption (Ctrl-C) leaves no DST behind. An existing
DST is replaced only with --force. SRC may be in use by an application
writing it: compact copies the state of the last commit when it starts.
It prints the sizes before and after.`,
		Args: usageArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := args[0], args[1]
			if err := mustExist(src); err != nil {
				return err
			}
			if fi, err := os.Stat(dst); err == nil {
				if si, err := os.Stat(src); err == nil && os.SameFile(si, fi) {
					return fmt.Errorf("%s and %s are the same file", src, dst)
				}
				if !force {
					return fmt.Errorf("%s exists (use --force to replace it)", dst)
				}
			}
			if txMax < 1 {
				return exitWith(exitUsage, fmt.Errorf("--tx-max-size %d: want at least 1", txMax))
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			r, err := g.compact(ctx, cmd, src, dst, txMax)
			if errors.Is(err, errInterrupted) {
				return exitWith(exitInterrupted, fmt.Errorf("compact %w; %s was not written", errInterrupted, dst))
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: %s (%d pages, %d free)\n", r.Src, humanBytes(r.SrcSize), r.SrcPages, r.SrcFree)
			fmt.Fprintf(out, "%s: %s (%d pages): %s in %s, %s\n", r.Dst, humanBytes(r.DstSize), r.DstPages,
				plural(r.Keys, "key"), plural(r.Buckets, "bucket"), plural(int64(r.Txs), "transaction"))
			if r.SrcSize > 0 {
				fmt.Fprintf(out, "%.1f%% of the original size\n", float64(r.DstSize)*100/float64(r.SrcSize))
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&txMax, "tx-max-size", 64<<20, "bytes of keys and values to copy per write transaction")
	cmd.Flags().BoolVar(&force, "force", false, "replace DST if it exists")
	return cmd
}

func (g *globals) compact(ctx context.Context, cmd *cobra.Command, src, dst string, txMax int64) (*compactReport, error) {
	sdb, err := g.openDB(src, false)
	if err != nil {
		return nil, err
	}
	defer sdb.Close()
	st := sdb.Stats()
	r := &compactReport{Src: src, Dst: dst, SrcSize: st.FileSize, SrcPages: st.PageCount, SrcFree: st.FreePageN + st.PendingPageN}
	err = writeFileAtomic(dst, func(f *os.File) error {
		// The engine keeps a lock file beside the database; the one of the
		// temporary name goes with it (nobody else knows that name).
		defer os.Remove(f.Name() + "-lock")
		// The engine opens the file itself: an empty file is a new database.
		ddb, err := g.createDB(f.Name(), &mapkv.Options{PageSize: st.PageSize, NoSync: true})
		if err != nil {
			return err
		}
		c := &copier{ctx: ctx, db: ddb, txMax: txMax, bar: g.newProgress(cmd, "compact", true)}
		err = sdb.View(func(stx *mapkv.Tx) error {
			if c.bar.on {
				var total int64
				stx.ForEachBucket(func(_ []byte, b *mapkv.Bucket) error {
					s := b.Stats()
					total += s.KeyBytes + s.ValueBytes
					return nil
				})
				c.bar.setTotal(total)
			}
			return c.copyAll(stx)
		})
		c.bar.finish()
		hwm := ddb.Stats().PageCount
		if cerr := ddb.Close(); err == nil {
			err = cerr
		}
		r.DstPages = hwm
		if err != nil {
			return inFile(src, err)
		}
		// The file grew in steps; cut it at the last page in use.
		if err := f.Truncate(int64(hwm) * int64(st.PageSize)); err != nil {
			return err
		}
		r.Keys, r.Buckets, r.Txs = c.keys, c.buckets, c.txs
		// The copy was written without flushes; writeFileAtomic syncs it
		// once before the rename.
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		r.DstSize = fi.Size()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// copier copies buckets into a new database in write transactions of
// about txMax bytes each.
type copier struct {
	ctx           context.Context
	db            *mapkv.DB
	tx            *mapkv.Tx // the write transaction in progress
	txMax, size   int64     // bytes per transaction, and in this one so far
	keys, buckets int64
	txs           int
	bar           *progress
	done          int64 // bytes copied
}

func (c *copier) copyAll(stx *mapkv.Tx) (err error) {
	if c.tx, err = c.db.Begin(true); err != nil {
		return err
	}
	defer func() {
		if c.tx != nil {
			c.tx.Rollback()
		}
	}()
	err = stx.ForEachBucket(func(name []byte, b *mapkv.Bucket) error {
		if b == nil {
			return stx.Err()
		}
		return c.copyBucket(stx, b, [][]byte{append([]byte(nil), name...)})
	})
	if err == nil {
		err = stx.Err()
	}
	if err != nil {
		return err
	}
	err = c.tx.Commit()
	c.tx = nil
	c.txs++
	return err
}

// copyBucket copies src, and the buckets nested in it, to path.
func (c *copier) copyBucket(stx *mapkv.Tx, src *mapkv.Bucket, path [][]byte) error {
	dst, err := createBucketAt(c.tx, path)
	if err != nil {
		return err
	}
	c.buckets++
	if seq := src.Sequence(); seq != 0 {
		if err := dst.SetSequence(seq); err != nil {
			return fmt.Errorf("bucket %s: %w", formatPath(path), err)
		}
	}
	cur := src.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if v == nil {
			child := src.Bucket(k)
			if child == nil {
				return stx.Err()
			}
			sub := append(append([][]byte(nil), path...), append([]byte(nil), k...))
			if err := c.copyBucket(stx, child, sub); err != nil {
				return err
			}
			// The nested copy may have committed: look dst up again.
			if dst, err = bucketAt(c.tx, path); err != nil {
				return err
			}
			continue
		}
		if err := dst.Put(k, v); err != nil {
			return fmt.Errorf("bucket %s: %w", formatPath(path), err)
		}
		c.keys++
		if c.keys&4095 == 0 {
			c.bar.setDone(c.done)
			if c.ctx.Err() != nil {
				return errInterrupted // the temporary file is removed: no need to commit
			}
		}
		n := int64(len(k) + len(v))
		c.size += n
		c.done += n
		if c.size >= c.txMax {
			if err := c.commit(); err != nil {
				return err
			}
			if dst, err = bucketAt(c.tx, path); err != nil {
				return err
			}
		}
	}
	return stx.Err()
}

// commit ends the current write transaction and starts the next, unless
// the command was interrupted.
func (c *copier) commit() (err error) {
	c.bar.setDone(c.done)
	if err := c.tx.Commit(); err != nil {
		c.tx = nil
		return err
	}
	c.txs++
	c.size = 0
	c.tx = nil
	if c.ctx.Err() != nil {
		return errInterrupted
	}
	c.tx, err = c.db.Begin(true)
	return err
}
