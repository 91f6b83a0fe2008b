package mapkv

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing [off, off+n) of f to
// the disk without waiting (sync_file_range SYNC_FILE_RANGE_WRITE): it is
// not a flush (no metadata, no disk cache), only an early start for the
// fdatasync that follows. Errors are the flush's to report.
func startWriteback(f *os.File, off, n int64) {
	unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE) //nolint:errcheck // see above
}
