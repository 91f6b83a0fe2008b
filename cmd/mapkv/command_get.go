package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newGetCmd) }

// getReport is the output of "mapkv get --json".
type getReport struct {
	Bucket string    `json:"bucket"`
	Key    jsonBytes `json:"key"`
	Value  jsonBytes `json:"value"`
}

// errNotFound is returned for a key that is not in its bucket.
var errNotFound = errors.New("key not found")

func newGetCmd(g *globals) *cobra.Command {
	var asJSON bool
	var format string
	cmd := &cobra.Command{
		Use:   "get DB BUCKET KEY",
		Short: "Print the value of a key",
		Long: `Get prints the value of KEY in BUCKET (a path: "a/b"). The value prints
as text when printable and as hex otherwise; --format forces one, and
also says how KEY is read (auto and text read it as is).`,
		Args:              usageArgs(3, 3),
		ValidArgsFunction: g.completeBucketArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, path, key, err := keyArgs(format, args[1], "key", args[2])
			if err != nil {
				return err
			}
			db, err := g.openDB(args[0], false)
			if err != nil {
				return err
			}
			defer db.Close()
			var r getReport
			var text string
			err = db.View(func(tx *mapkv.Tx) error {
				b, err := bucketAt(tx, path)
				if err != nil {
					return err
				}
				v := b.Get(key)
				if v == nil {
					if err := tx.Err(); err != nil {
						return err
					}
					if b.Bucket(key) != nil {
						return fmt.Errorf("bucket %s: key %s names a nested bucket", formatPath(path), f.encode(key))
					}
					return fmt.Errorf("bucket %s: key %s: %w", formatPath(path), f.encode(key), errNotFound)
				}
				r = getReport{Bucket: formatPath(path), Key: f.json(key), Value: f.json(v)}
				text = f.encode(v)
				return nil
			})
			if err != nil {
				return inFile(args[0], err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), text)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addFormatFlag(cmd, &format)
	return cmd
}
