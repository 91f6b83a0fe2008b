package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newBucketsCmd) }

// bucketJSON is one line of "mapkv buckets --json".
type bucketJSON struct {
	Path  string    `json:"path"`  // escaped path, as the other commands take it
	Name  jsonBytes `json:"name"`  // the last name of the path, raw
	Depth int       `json:"depth"` // 1 for a top-level bucket
}

func newBucketsCmd(g *globals) *cobra.Command {
	var asJSON, top bool
	cmd := &cobra.Command{
		Use:   "buckets DB [BUCKET]",
		Short: "List bucket paths, nested buckets included",
		Long: `Buckets lists the path of every bucket, depth first in key order, one per
line: "a", "a/b", "a/b/c". With BUCKET, only the buckets inside it. A
name's "/" is written "\/", its "\" "\\" and any byte that is not
printable "\xHH"; every command reads paths written so.`,
		Args:              usageArgs(1, 2),
		ValidArgsFunction: g.completeBuckets,
		RunE: func(cmd *cobra.Command, args []string) error {
			var under [][]byte
			if len(args) > 1 {
				var err error
				if under, err = parsePath(args[1]); err != nil {
					return err
				}
			}
			db, err := g.openDB(args[0], false)
			if err != nil {
				return err
			}
			defer db.Close()
			list := []bucketJSON{}
			err = db.View(func(tx *mapkv.Tx) error {
				var b *mapkv.Bucket
				if under != nil {
					if b, err = bucketAt(tx, under); err != nil {
						return err
					}
				}
				return walkBuckets(tx, b, under, func(p [][]byte, _ *mapkv.Bucket) error {
					if top && len(p) > len(under)+1 {
						return nil
					}
					list = append(list, bucketJSON{Path: formatPath(p), Name: formatAuto.json(p[len(p)-1]), Depth: len(p)})
					return nil
				})
			})
			if err != nil {
				return inFile(args[0], err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			for _, b := range list {
				fmt.Fprintln(cmd.OutOrStdout(), b.Path)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&top, "top", false, "list only the first level (top-level buckets, or those directly inside BUCKET)")
	return cmd
}
