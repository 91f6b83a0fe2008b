//go:build linux

package snapshot

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// setStallTimeout makes the kernel drop c once sent data has gone
// unacknowledged, or waited on a zero window, for d (TCP_USER_TIMEOUT).
// It is a safeguard: failure to set it is ignored.
func setStallTimeout(c *net.TCPConn, d time.Duration) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	})
}
