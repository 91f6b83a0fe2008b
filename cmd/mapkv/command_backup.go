package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mapkv/mapkv"
)

func init() { register(newBackupCmd) }

func newBackupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup DB OUT",
		Short: "Write a consistent copy of a database to a file or to standard output (-)",
		Long: `Backup writes the database as one read transaction sees it: a valid
mapkv file, consistent whatever commits happen meanwhile. The bytes move
kernel to kernel (copy_file_range to a file, sendfile to a pipe or
socket). OUT is written as a temporary file beside it, synced and renamed
into place when complete; "-" writes to standard output, so

    mapkv backup app.db - | ssh replica 'cat > app.db'

seeds a replica.`,
		Args: usageArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := args[0], args[1]
			toStdout := dst == "-"
			if toStdout {
				if f, ok := cmd.OutOrStdout().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					return errors.New("backup: standard output is a terminal: redirect it, or give a file name")
				}
			} else if fi, err := os.Stat(dst); err == nil {
				if si, err := os.Stat(src); err == nil && os.SameFile(si, fi) {
					return fmt.Errorf("%s and %s are the same file", src, dst)
				}
			}
			db, err := g.openDB(src, false)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx, stop := interruptible(cmd)
			defer stop()
			var n int64
			var txid uint64
			start := time.Now()
			err = writeOutput(cmd, dst, func(w io.Writer) error {
				return db.View(func(tx *mapkv.Tx) error {
					txid = tx.ID()
					var err error
					n, err = copyTx(ctx, g.newProgress(cmd, "backup", true), tx, w)
					return err
				})
			})
			if err != nil {
				if ctx.Err() != nil {
					what := dst + " was not written"
					if toStdout {
						what = "the output is incomplete"
					}
					return exitWith(exitInterrupted, fmt.Errorf("backup %w; %s", errInterrupted, what))
				}
				return inFile(src, err)
			}
			report := cmd.OutOrStdout()
			if toStdout {
				report = cmd.ErrOrStderr()
			}
			fmt.Fprintf(report, "backup of %s at tx %d: %s written to %s in %s\n", src, txid, humanBytes(n), dst, humanDuration(time.Since(start)))
			return nil
		},
	}
	return cmd
}

// copyTx writes tx's image to w with Tx.WriteTo, which moves the pages
// with the kernel when w is a file, pipe or socket. A progress bar, when
// shown, follows the size of a file destination; an interruption closes
// a file destination so that the copy stops at once.
func copyTx(ctx context.Context, bar *progress, tx *mapkv.Tx, w io.Writer) (int64, error) {
	f, isFile := w.(*os.File)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				if isFile {
					f.Close()
				}
				return
			case <-tick.C:
				if isFile {
					if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
						bar.set(fi.Size(), tx.Size())
					}
				}
			}
		}
	}()
	n, err := tx.WriteTo(w)
	close(stop)
	<-done
	bar.finish()
	if err == nil && ctx.Err() != nil {
		err = errInterrupted
	}
	return n, err
}
