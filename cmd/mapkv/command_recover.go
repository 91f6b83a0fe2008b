package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newRecoverCmd) }

func newRecoverCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "recover DB",
		Short: "Replay the write-ahead log a crashed writer left beside DB",
		Long: `Recover opens DB for writing once, which replays the commits its
write-ahead log (DB-wal) holds into the data file, flushes it and removes
the log. A writer that stops without closing the database (a crash, a
kill, a power cut) leaves the log behind; until a read-write open replays
it, read-only commands (info, check, keys, ...) refuse the database with
"database needs recovery". The application's next start does the same;
recover is for inspecting the database before that.

Nothing happens to a database without a log. Like any read-write open,
recover waits for (and fails if) another process has DB open for writing.`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if err := mustExist(path); err != nil {
				return err
			}
			_, err := os.Stat(path + "-wal")
			had := !errors.Is(err, fs.ErrNotExist)
			db, err := g.open(path, &mapkv.Options{})
			if err != nil {
				return err
			}
			st := db.Stats()
			if err := db.Close(); err != nil {
				return inFile(path, err)
			}
			out := cmd.OutOrStdout()
			if !had {
				fmt.Fprintf(out, "%s: no write-ahead log, nothing to recover (tx %d)\n", path, st.TxID)
				return nil
			}
			fmt.Fprintf(out, "%s: recovered at tx %d; the write-ahead log is replayed and removed\n", path, st.TxID)
			return nil
		},
	}
}
