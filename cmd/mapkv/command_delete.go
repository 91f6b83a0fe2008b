package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newDeleteCmd) }

func newDeleteCmd(g *globals) *cobra.Command {
	var format string
	var force bool
	cmd := &cobra.Command{
		Use:   "delete DB BUCKET KEY",
		Short: "Delete a key",
		Long: `Delete removes KEY from BUCKET (a path: "a/b"). A key that is not there
is an error unless --force is given; a key that names a nested bucket is
always one. --format says how KEY is read.`,
		Args:              usageArgs(3, 3),
		ValidArgsFunction: g.completeBucketArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, path, key, err := keyArgs(format, args[1], "key", args[2])
			if err != nil {
				return err
			}
			db, err := g.openDB(args[0], true)
			if err != nil {
				return err
			}
			defer db.Close()
			err = db.Update(func(tx *mapkv.Tx) error {
				b, err := bucketAt(tx, path)
				if err != nil {
					return err
				}
				if b.Get(key) == nil {
					if err := tx.Err(); err != nil {
						return err
					}
					if b.Bucket(key) != nil {
						return fmt.Errorf("bucket %s: key %s names a nested bucket", formatPath(path), f.encode(key))
					}
					if force {
						return nil
					}
					return fmt.Errorf("bucket %s: key %s: %w", formatPath(path), f.encode(key), errNotFound)
				}
				return b.Delete(key)
			})
			if err != nil {
				return inFile(args[0], err)
			}
			return db.Close()
		},
	}
	addFormatFlag(cmd, &format)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "succeed when the key is not there")
	return cmd
}
