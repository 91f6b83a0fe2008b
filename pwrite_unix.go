//go:build linux || darwin || openbsd

package mapkv

import (
	"os"

	"golang.org/x/sys/unix"
)

// iovMax is the most buffers one pwritev call takes (IOV_MAX, 1024 on
// Linux and the BSDs; more is EINVAL).
const iovMax = 1024

// pwritev writes bufs to f at off, contiguously, retrying short writes,
// in calls of at most iovMax buffers.
func pwritev(f *os.File, bufs [][]byte, off int64) error {
	for len(bufs) > 0 {
		n, err := unix.Pwritev(int(f.Fd()), bufs[:min(len(bufs), iovMax)], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		off += int64(n)
		for n > 0 && len(bufs) > 0 {
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
			} else {
				bufs[0] = bufs[0][n:]
				n = 0
			}
		}
	}
	return nil
}
