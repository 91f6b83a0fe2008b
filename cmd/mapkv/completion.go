package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv"
)

// Shell completion comes from cobra ("mapkv completion bash|zsh|fish|
// powershell"); the functions here add bucket paths, read from the file
// named by the first argument, to what it completes.

// completeBuckets completes the DB argument as a file and every later
// argument as a bucket path (stats, dump, buckets).
func (g *globals) completeBuckets(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	return g.bucketCompletions(args[0], toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeBucketArg completes DB as a file and the second argument as a
// bucket path (keys, get, put, delete).
func (g *globals) completeBucketArg(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return nil, cobra.ShellCompDirectiveDefault
	case 1:
		return g.bucketCompletions(args[0], toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// bucketCompletions lists the bucket paths of the database at path that
// start with prefix. It never waits for a lock and reports no errors: a
// completion that fails offers nothing.
func (g *globals) bucketCompletions(path, prefix string) []cobra.Completion {
	if mustExist(path) != nil {
		return nil
	}
	db, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
	if err != nil {
		return nil
	}
	defer db.Close()
	var out []cobra.Completion
	db.View(func(tx *mapkv.Tx) error {
		return walkBuckets(tx, nil, nil, func(p [][]byte, _ *mapkv.Bucket) error {
			if s := formatPath(p); strings.HasPrefix(s, prefix) {
				out = append(out, s)
			}
			if len(out) > 1000 {
				return errStop
			}
			return nil
		})
	})
	return out
}
