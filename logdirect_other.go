//go:build !linux

package mapkv

import "os"

// openLogDirect returns nil: outside Linux the log is written through
// the page cache.
func openLogDirect(path string) *logDirect { return nil }

// aioCtx takes no requests outside Linux (see the Linux one).
type aioCtx struct{}

func (c *aioCtx) ready() bool                          { return false }
func (c *aioCtx) submit(*os.File, []byte, int64) error { return errNotSubmitted }
func (c *aioCtx) wait() (int, error)                   { return 0, errNotSubmitted }
func (c *aioCtx) close()                               {}
