package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
	"github.com/mapkv/mapkv/page"
)

func init() { register(newInfoCmd) }

// infoReport is the output of "mapkv info --json".
type infoReport struct {
	Path          string `json:"path"`
	FormatVersion uint32 `json:"format_version"`
	PageSize      int    `json:"page_size"`
	TxID          uint64 `json:"txid"`
	FileSize      int64  `json:"file_size"`
	PageCount     uint64 `json:"page_count"`    // pages up to the high-water mark
	PagesInUse    uint64 `json:"pages_in_use"`  // meta pages and pages reachable from the tree
	FreePages     uint64 `json:"free_pages"`    // free pages below the high-water mark
	FreeUnknown   bool   `json:"free_unknown"`  // free pages not counted: the last commit deferred its free list to the log
	TailPages     int64  `json:"tail_pages"`    // pages of the file beyond the high-water mark
	Buckets       int    `json:"buckets"`       // top-level buckets
	BucketsTotal  int    `json:"buckets_total"` // buckets at every level
	Keys          int    `json:"keys"`          // keys holding values, in all buckets
	MetaFallback  string `json:"meta_fallback,omitempty"`
	// Readers lists the read transactions open in other processes (the
	// lock file's reader slots) when info ran; OldestReader is the txid the
	// oldest of them reads: pages freed after it cannot be reused yet.
	Readers      []infoReader `json:"readers,omitempty"`
	OldestReader uint64       `json:"oldest_reader_txid,omitempty"`
	PinnedPages  uint64       `json:"pinned_pages,omitempty"`
}

// infoReader is one open reader of another process.
type infoReader struct {
	PID  int    `json:"pid"`
	TxID uint64 `json:"txid"`
}

func newInfoCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info DB",
		Short: "Show page size, txid, file size, pages in use and free, buckets and format version",
		Args:  usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.info(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			w := newTable(cmd.OutOrStdout())
			fmt.Fprintf(w, "path:\t%s\n", r.Path)
			fmt.Fprintf(w, "format version:\t%d\n", r.FormatVersion)
			fmt.Fprintf(w, "page size:\t%d\n", r.PageSize)
			fmt.Fprintf(w, "txid:\t%d\n", r.TxID)
			fmt.Fprintf(w, "file size:\t%s (%d bytes)\n", humanBytes(r.FileSize), r.FileSize)
			if r.FreeUnknown {
				fmt.Fprintf(w, "pages:\t%d (%d up to the high-water mark, %d beyond it; free pages not counted: the last commit left the free list to the writer's log)\n",
					r.PageCount+uint64(max(r.TailPages, 0)), r.PageCount, r.TailPages)
			} else {
				fmt.Fprintf(w, "pages:\t%d (%d in use, %d free, %d beyond the high-water mark)\n",
					r.PageCount+uint64(max(r.TailPages, 0)), r.PagesInUse, r.FreePages, r.TailPages)
			}
			fmt.Fprintf(w, "buckets:\t%d (%d with nested buckets)\n", r.Buckets, r.BucketsTotal)
			fmt.Fprintf(w, "keys:\t%d\n", r.Keys)
			if len(r.Readers) > 0 {
				fmt.Fprintf(w, "readers:\t%d open in other processes, the oldest reading tx %d\n", len(r.Readers), r.OldestReader)
				for _, rd := range r.Readers {
					fmt.Fprintf(w, "\tpid %d reads tx %d\n", rd.PID, rd.TxID)
				}
			}
			if r.MetaFallback != "" {
				fmt.Fprintf(w, "note:\tthe newest commit was not used: %s\n", r.MetaFallback)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (g *globals) info(path string) (*infoReport, error) {
	db, err := g.openDB(path, false)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	st := db.Stats()
	r := &infoReport{
		Path:          path,
		FormatVersion: page.Version,
		PageSize:      st.PageSize,
		TxID:          st.TxID,
		FileSize:      st.FileSize,
		PageCount:     st.PageCount,
		FreePages:     st.FreePageN + st.PendingPageN,
		FreeUnknown:   st.FreeListDeferred,
		TailPages:     st.FileSize/int64(st.PageSize) - int64(st.PageCount),
		MetaFallback:  st.MetaFallback,
		OldestReader:  st.OldestReadTxID,
		PinnedPages:   st.PinnedPageN,
	}
	for _, rd := range st.Readers {
		if rd.PID != 0 {
			r.Readers = append(r.Readers, infoReader{PID: rd.PID, TxID: rd.TxID})
		}
	}
	r.PagesInUse = st.PageCount - min(r.FreePages, st.PageCount)
	err = db.View(func(tx *mapkv.Tx) error {
		return tx.ForEachBucket(func(name []byte, b *mapkv.Bucket) error {
			if b == nil {
				return nil
			}
			s := b.Stats()
			r.Buckets++
			r.BucketsTotal += s.BucketN
			r.Keys += s.KeyN
			return nil
		})
	})
	if err != nil {
		return nil, inFile(path, err)
	}
	return r, nil
}
