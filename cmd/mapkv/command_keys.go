package main

import (
	"bytes"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newKeysCmd) }

// keysReport is the output of "mapkv keys --json".
type keysReport struct {
	Bucket string      `json:"bucket"`
	Keys   []jsonBytes `json:"keys"`
	More   bool        `json:"more"` // --limit cut the list short
}

func newKeysCmd(g *globals) *cobra.Command {
	var asJSON bool
	var format, prefix string
	var limit int
	cmd := &cobra.Command{
		Use:   "keys DB BUCKET",
		Short: "List the keys of a bucket, in order",
		Long: `Keys lists the keys holding values in BUCKET (a path: "a/b"), in key
order, one per line; nested buckets are not listed (see "mapkv buckets").
Keys print as text when printable and as hex otherwise; --format forces
one, and also says how --prefix is read.`,
		Args:              usageArgs(2, 2),
		ValidArgsFunction: g.completeBucketArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, path, pfx, err := keyArgs(format, args[1], "prefix", prefix)
			if err != nil {
				return err
			}
			db, err := g.openDB(args[0], false)
			if err != nil {
				return err
			}
			defer db.Close()
			r := keysReport{Bucket: formatPath(path), Keys: []jsonBytes{}}
			out := cmd.OutOrStdout()
			err = db.View(func(tx *mapkv.Tx) error {
				b, err := bucketAt(tx, path)
				if err != nil {
					return err
				}
				c := b.Cursor()
				n := 0
				for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
					if v == nil {
						continue // a nested bucket
					}
					if limit > 0 && n == limit {
						r.More = true
						break
					}
					n++
					if asJSON {
						r.Keys = append(r.Keys, f.json(k))
					} else if _, err := fmt.Fprintln(out, f.encode(k)); err != nil {
						return err
					}
				}
				return tx.Err()
			})
			if err != nil {
				return inFile(args[0], err)
			}
			if asJSON {
				return writeJSON(out, r)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&prefix, "prefix", "", "list only keys that start with this")
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many keys (0: all)")
	addFormatFlag(cmd, &format)
	return cmd
}
