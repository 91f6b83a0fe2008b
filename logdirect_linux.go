package mapkv

import (
	"os"

	"golang.org/x/sys/unix"
)

// openLogDirect opens the log at path a second time, for direct I/O
// (O_DIRECT), if its file system takes direct writes aligned to at most a
// page (statx's STATX_DIOALIGN; kernels before 6.1 do not say, and a
// page is assumed). Otherwise, or if it cannot, it returns nil: the log
// is written through the page cache.
func openLogDirect(path string) *logDirect {
	align := int64(os.Getpagesize())
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_DIOALIGN, &st); err == nil && st.Mask&unix.STATX_DIOALIGN != 0 {
		if st.Dio_offset_align == 0 || int64(st.Dio_offset_align) > align || int64(st.Dio_mem_align) > align {
			return nil // no direct I/O here, or blocks larger than a page
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return &logDirect{f: f, align: align}
}
