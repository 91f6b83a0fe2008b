//go:build !(linux || darwin || openbsd)

package mapkv

import "os"

// pwritev writes bufs to f at off, one after the other.
func pwritev(f *os.File, bufs [][]byte, off int64) error {
	for _, b := range bufs {
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}
