//go:build !amd64

package btree

// prefetchLines does nothing where mapkv has no prefetch instruction to
// give (see prefetch_amd64.go).
func prefetchLines(p *byte, lines int) {}
