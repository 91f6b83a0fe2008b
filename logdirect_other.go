//go:build !linux

package mapkv

// openLogDirect returns nil: outside Linux the log is written through
// the page cache.
func openLogDirect(path string) *logDirect { return nil }
