package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

func init() { register(newPutCmd) }

func newPutCmd(g *globals) *cobra.Command {
	var format string
	var create bool
	cmd := &cobra.Command{
		Use:   "put DB BUCKET KEY [VALUE]",
		Short: "Set a key to a value, creating the bucket path if needed",
		Long: `Put sets KEY in BUCKET (a path: "a/b", whose missing buckets it creates)
to VALUE, or to what it reads from standard input when VALUE is omitted
(taken byte for byte, so "put DB b k < photo.jpg" stores the file).
--format says how KEY and VALUE are read: auto and text as is, hex, or
base64. The file must exist unless --create is given.`,
		Args:              usageArgs(3, 4),
		ValidArgsFunction: g.completeBucketArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, path, key, err := keyArgs(format, args[1], "key", args[2])
			if err != nil {
				return err
			}
			var value []byte
			if len(args) == 4 {
				value, err = f.decode("value", args[3])
			} else {
				value, err = io.ReadAll(cmd.InOrStdin())
				if err == nil && f != formatAuto && f != formatText {
					value, err = f.decode("value", string(trimNewline(value)))
				}
			}
			if err != nil {
				return err
			}
			var db *mapkv.DB
			if create {
				db, err = g.createDB(args[0], &mapkv.Options{})
			} else {
				db, err = g.openDB(args[0], true)
			}
			if err != nil {
				return err
			}
			defer db.Close()
			err = db.Update(func(tx *mapkv.Tx) error {
				b, err := createBucketAt(tx, path)
				if err != nil {
					return err
				}
				if err := b.Put(key, value); err != nil {
					return fmt.Errorf("bucket %s: key %s: %w", formatPath(path), f.encode(key), err)
				}
				return nil
			})
			if err != nil {
				return inFile(args[0], err)
			}
			return db.Close()
		},
	}
	addFormatFlag(cmd, &format)
	cmd.Flags().BoolVar(&create, "create", false, "create the database file if it does not exist")
	return cmd
}

// trimNewline drops one trailing newline (a hex or base64 value piped from
// echo ends with one).
func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
