//go:build !linux

package mapkv

import "os"

// startWriteback does nothing where sync_file_range is missing: the
// commit's flush writes everything.
func startWriteback(*os.File, int64, int64) {}
