package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newStatsCmd) }

// bucketStatsJSON is one bucket's line of "mapkv stats --json".
type bucketStatsJSON struct {
	Bucket        string  `json:"bucket,omitempty"` // path (none for the total)
	Keys          int     `json:"keys"`
	Buckets       int     `json:"buckets"` // this bucket and those nested in it
	Depth         int     `json:"depth"`
	BranchPages   int     `json:"branch_pages"`
	LeafPages     int     `json:"leaf_pages"`
	OverflowPages int     `json:"overflow_pages"`
	BranchAlloc   int64   `json:"branch_alloc"`
	BranchInuse   int64   `json:"branch_inuse"`
	LeafAlloc     int64   `json:"leaf_alloc"`
	LeafInuse     int64   `json:"leaf_inuse"`
	Fill          float64 `json:"fill"` // bytes in use / bytes allocated, branch and leaf pages
	KeyBytes      int64   `json:"key_bytes"`
	ValueBytes    int64   `json:"value_bytes"`
}

// statsReport is the output of "mapkv stats --json".
type statsReport struct {
	Buckets []bucketStatsJSON `json:"buckets"`
	Total   bucketStatsJSON   `json:"total"`
}

func statsJSON(name string, s mapkv.BucketStats) bucketStatsJSON {
	r := bucketStatsJSON{
		Bucket: name, Keys: s.KeyN, Buckets: s.BucketN, Depth: s.Depth,
		BranchPages: s.BranchPageN, LeafPages: s.LeafPageN, OverflowPages: s.OverflowPageN,
		BranchAlloc: s.BranchAlloc, BranchInuse: s.BranchInuse,
		LeafAlloc: s.LeafAlloc, LeafInuse: s.LeafInuse,
		KeyBytes: s.KeyBytes, ValueBytes: s.ValueBytes,
	}
	if alloc := s.BranchAlloc + s.LeafAlloc; alloc > 0 {
		r.Fill = float64(s.BranchInuse+s.LeafInuse) / float64(alloc)
	}
	return r
}

func newStatsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats DB [BUCKET...]",
		Short: "Show keys, depth, pages, fill factor and bytes per bucket, and a total",
		Long: `Stats walks the tree of each top-level bucket (or of each named bucket
path) and reports its keys, tree depth, branch, leaf and overflow pages,
fill factor (bytes in use over bytes allocated in branch and leaf pages)
and bytes of keys and values. Each line counts the buckets nested in it;
the total adds up the lines.`,
		Args:              usageArgs(1, -1),
		ValidArgsFunction: g.completeBuckets,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := g.openDB(args[0], false)
			if err != nil {
				return err
			}
			defer db.Close()
			rows := []bucketStatsJSON{}
			var total mapkv.BucketStats
			err = db.View(func(tx *mapkv.Tx) error {
				add := func(name string, b *mapkv.Bucket) {
					s := b.Stats()
					rows = append(rows, statsJSON(name, s))
					total.Add(s)
				}
				if len(args) == 1 {
					return tx.ForEachBucket(func(name []byte, b *mapkv.Bucket) error {
						add(formatName(name), b)
						return nil
					})
				}
				for _, p := range args[1:] {
					path, err := parsePath(p)
					if err != nil {
						return err
					}
					b, err := bucketAt(tx, path)
					if err != nil {
						return err
					}
					add(formatPath(path), b)
				}
				return nil
			})
			if err != nil {
				return inFile(args[0], err)
			}
			sum := statsJSON("", total)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), statsReport{Buckets: rows, Total: sum})
			}
			sum.Bucket = "(total)"
			rows = append(rows, sum)
			w := newTable(cmd.OutOrStdout())
			fmt.Fprintln(w, "BUCKET\tKEYS\tBUCKETS\tDEPTH\tBRANCH\tLEAF\tOVERFLOW\tFILL\tKEY BYTES\tVALUE BYTES")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", r.Bucket, r.Keys, r.Buckets, r.Depth,
					r.BranchPages, r.LeafPages, r.OverflowPages,
					percent(r.BranchInuse+r.LeafInuse, r.BranchAlloc+r.LeafAlloc),
					humanBytes(r.KeyBytes), humanBytes(r.ValueBytes))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
