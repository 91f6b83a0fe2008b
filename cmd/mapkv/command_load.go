package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mapkv/mapkv"
)

func init() { register(newLoadCmd) }

// loadOptions are the flags of "mapkv load".
type loadOptions struct {
	file        string
	bucket      string
	batch       int
	noOverwrite bool
	noSync      bool
	pageSize    int
}

// loadResult is how far a load got; every count is of committed work.
type loadResult struct {
	keys, skipped, txs int64
	sections           int64  // sections begun
	line               int    // last line committed
	bucket             string // section being loaded when it stopped
}

func newLoadCmd(g *globals) *cobra.Command {
	var o loadOptions
	cmd := &cobra.Command{
		Use:   "load DB",
		Short: "Load a dump written by mapkv dump, mdb_dump or db_dump",
		Long: `Load reads a dump in the text format of LMDB's mdb_dump (from standard
input, or from --file) and puts its keys into DB, creating the file and
the buckets as needed: a section named "database=a/b" goes into bucket b
inside a. Existing keys are replaced unless --no-overwrite is given.

A dump of an unnamed database (mdb_dump without -a or -s) needs --bucket:
it loads into that bucket path. With --bucket, named sections load
beneath it (PATH/NAME).

Keys are committed in transactions of --batch keys. On an error, or when
interrupted (Ctrl-C), load reports how far it got: everything before that
point is committed, nothing after it is; an interrupted load finishes the
transaction it is in first (press Ctrl-C again to stop at once).`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.load(cmd, args[0], &o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "read the dump from this file instead of standard input")
	f.StringVarP(&o.bucket, "bucket", "s", "", "load an unnamed section into this bucket path, and named ones beneath it")
	f.IntVar(&o.batch, "batch", 10000, "keys per transaction")
	f.BoolVarP(&o.noOverwrite, "no-overwrite", "N", false, "keep the value of keys that already exist (mdb_load -N)")
	f.BoolVar(&o.noSync, "no-sync", false, "do not flush each transaction to disk (faster; a crash may lose the last ones)")
	f.IntVar(&o.pageSize, "page-size", 0, "page size of a new database file (default: the OS page size)")
	return cmd
}

func (g *globals) load(cmd *cobra.Command, path string, o *loadOptions) error {
	if o.batch < 1 {
		return exitWith(exitUsage, fmt.Errorf("--batch %d: want at least 1", o.batch))
	}
	var base [][]byte
	if o.bucket != "" {
		var err error
		if base, err = parsePath(o.bucket); err != nil {
			return err
		}
	}
	in := cmd.InOrStdin()
	var size int64
	if o.file != "" && o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = f
	} else if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return errors.New("load reads a dump from standard input, which is a terminal: pipe one in or use --file")
	}
	ctx, stop := interruptible(cmd)
	defer stop()
	db, err := g.createDB(path, &mapkv.Options{NoSync: o.noSync, PageSize: o.pageSize})
	if err != nil {
		return err
	}
	defer db.Close()
	bar := g.newProgress(cmd, "load", true)
	bar.setTotal(size)
	res, err := loadDump(ctx, db, newDumpReader(in), base, o, bar, cmd.ErrOrStderr())
	bar.finish()
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	out := cmd.OutOrStdout()
	summary := fmt.Sprintf("%s in %s, %s", plural(res.keys, "key"), plural(res.sections, "bucket section"), plural(res.txs, "transaction"))
	if res.skipped > 0 {
		summary += fmt.Sprintf(", %s kept", plural(res.skipped, "existing key"))
	}
	switch {
	case errors.Is(err, errInterrupted):
		fmt.Fprintf(out, "interrupted: loaded %s into %s; committed up to dump line %d", summary, path, res.line)
		if res.bucket != "" {
			fmt.Fprintf(out, " (bucket %s)", res.bucket)
		}
		fmt.Fprintln(out, "; the rest was not loaded")
		return exitWith(exitInterrupted, nil)
	case err != nil:
		return fmt.Errorf("%s: %w (loaded and committed before it: %s, up to dump line %d)", path, err, summary, res.line)
	}
	fmt.Fprintf(out, "loaded %s into %s\n", summary, path)
	return nil
}

// loadDump loads the sections of r into db in transactions of o.batch
// keys, stopping cleanly (after committing the transaction in progress)
// when ctx is cancelled, with errInterrupted.
func loadDump(ctx context.Context, db *mapkv.DB, r *dumpReader, base [][]byte, o *loadOptions, bar *progress, warn io.Writer) (loadResult, error) {
	var res loadResult
	var h *dumpHeader // the section being read; nil between sections
	var target [][]byte
	warned := map[string]bool{}
	for eof := false; !eof; {
		if ctx.Err() != nil {
			return res, errInterrupted
		}
		var keys, skipped, sections int64
		err := db.Update(func(tx *mapkv.Tx) error {
			var b *mapkv.Bucket // target's bucket in this transaction
			for keys+skipped < int64(o.batch) {
				if ctx.Err() != nil {
					return nil // commit what this transaction holds, then stop
				}
				if h == nil {
					hdr, err := r.header()
					if err == io.EOF {
						eof = true
						return nil
					}
					if err != nil {
						return err
					}
					h = &hdr
					for _, k := range hdr.ignore {
						if !warned[k] && k != "mapsize" && k != "maxreaders" && k != "db_pagesize" && k != "mapaddr" {
							warned[k] = true
							fmt.Fprintf(warn, "mapkv: dump line %d: header keyword %q ignored\n", hdr.line, k)
						}
					}
					sections++
					if target, err = sectionPath(base, hdr.name); err != nil {
						return errorAt(hdr.line, "%v", err)
					}
					b = nil
				}
				if b == nil {
					var err error
					if b, err = createBucketAt(tx, target); err != nil {
						return errorAt(h.line, "%v", err)
					}
					if h.seq != 0 {
						if err := b.SetSequence(h.seq); err != nil {
							return errorAt(h.line, "bucket %s: %v", formatPath(target), err)
						}
					}
				}
				k, v, ok, err := r.record(h)
				if err != nil {
					return err
				}
				if !ok {
					h = nil
					continue
				}
				if o.noOverwrite && b.Get(k) != nil {
					skipped++
					continue
				}
				if err := b.Put(k, v); err != nil {
					return errorAt(r.keyLine, "bucket %s: %v", formatPath(target), err)
				}
				keys++
				if keys&1023 == 0 {
					bar.setDone(r.n)
				}
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		res.keys += keys
		res.skipped += skipped
		res.sections += sections
		res.txs++
		res.line = r.line
		res.bucket = ""
		if h != nil {
			res.bucket = formatPath(target)
		}
		bar.setDone(r.n)
	}
	return res, nil
}

// sectionPath is the bucket a section loads into: its database name as a
// bucket path, beneath base when --bucket is given.
func sectionPath(base [][]byte, name string) ([][]byte, error) {
	if name == "" {
		if base == nil {
			return nil, errors.New("the dump has an unnamed database (mdb_dump without -a or -s): name a bucket for it with --bucket")
		}
		return base, nil
	}
	p, err := parsePath(name)
	if err != nil {
		return nil, fmt.Errorf("database=%s: %v", name, err)
	}
	if strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("database=%s: not a bucket path", name)
	}
	return append(append([][]byte(nil), base...), p...), nil
}
