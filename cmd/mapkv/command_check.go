package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newCheckCmd) }

// checkReport is the output of "mapkv check --json".
type checkReport struct {
	Path     string   `json:"path"`
	OK       bool     `json:"ok"`
	TxID     uint64   `json:"txid,omitempty"`
	Pages    uint64   `json:"pages,omitempty"` // pages checked (up to the high-water mark)
	Problems []string `json:"problems"`
	More     int      `json:"more_problems,omitempty"` // problems found beyond those listed
	// Note is set when Open passed over the newest commit because its
	// pages did not verify (a commit cut short by a crash): the older
	// commit is intact and was checked.
	Note string `json:"note,omitempty"`
}

func newCheckCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check DB",
		Short: "Verify every page, checksum, key order and the free list",
		Long: `Check verifies the whole database as one read transaction sees it:
checksums, ids and txids of every node, key order within and across
nodes, balanced trees, nested buckets, overflow values, and that every
page is either reachable exactly once or free exactly once.

Exit status: 0 when the database is clean, 3 when check finds corruption
(including a file that cannot be opened because it is damaged), 1 on
other errors (a missing file, say).`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.check(cmd, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, r); err != nil {
					return err
				}
			} else {
				if r.Note != "" {
					fmt.Fprintf(out, "note: %s\n", r.Note)
				}
				if r.OK {
					fmt.Fprintf(out, "ok: %s: %d pages at tx %d, no problems\n", r.Path, r.Pages, r.TxID)
				} else {
					n := len(r.Problems) + r.More
					fmt.Fprintf(out, "%s: %s found", r.Path, plural(int64(n), "problem"))
					if r.Pages > 0 {
						fmt.Fprintf(out, " in %d pages at tx %d", r.Pages, r.TxID)
					}
					fmt.Fprintln(out, ":")
					for _, p := range r.Problems {
						fmt.Fprintf(out, "  %s\n", p)
					}
					if r.More > 0 {
						fmt.Fprintf(out, "  ... and %d more\n", r.More)
					}
				}
			}
			if !r.OK {
				return exitWith(exitCorrupt, nil)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// check runs the check and sorts its outcome: corruption goes into the
// report, any other failure is returned as an error.
func (g *globals) check(cmd *cobra.Command, path string) (*checkReport, error) {
	r := &checkReport{Path: path, Problems: []string{}}
	corrupt := func(err error) (*checkReport, error) {
		var ce *mapkv.CheckError
		if errors.As(err, &ce) {
			r.Problems = append(r.Problems, ce.Problems...)
			r.More = ce.More
		} else {
			r.Problems = append(r.Problems, message(err))
		}
		return r, nil
	}
	db, err := g.openDB(path, false)
	if errors.Is(err, mapkv.ErrCorrupt) {
		return corrupt(err)
	}
	if err != nil {
		return nil, err
	}
	defer db.Close()
	st := db.Stats()
	r.TxID, r.Pages, r.Note = st.TxID, st.PageCount, st.MetaFallback
	bar := g.newProgress(cmd, "check", false)
	err = db.View(func(tx *mapkv.Tx) error {
		return tx.Check(func(done, total uint64) { bar.set(int64(done), int64(total)) })
	})
	bar.finish()
	switch {
	case errors.Is(err, mapkv.ErrCorrupt):
		return corrupt(err)
	case err != nil:
		return nil, inFile(path, err)
	}
	r.OK = true
	return r, nil
}
