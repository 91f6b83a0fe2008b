//go:build !linux

package snapshot

import (
	"net"
	"time"
)

// setStallTimeout does nothing where TCP_USER_TIMEOUT is not wired up; a
// stalled client then holds its stream until TCP gives up.
func setStallTimeout(c *net.TCPConn, d time.Duration) {}
