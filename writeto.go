package mapkv

import (
	"fmt"
	"io"

	"github.com/mapkv/mapkv/page"
)

// WriteStats says how one WriteToStats call moved the bytes of an image.
// The four fields add up to the bytes written (Total). Tests and tools use
// it to see that the zero-copy path was taken: for a socket or a pipe,
// Sendfile is Size()-2*pageSize and Mapped is 0; for a regular file the
// same holds for CopyFileRange.
type WriteStats struct {
	// Sendfile counts bytes moved by sendfile(2) from the data file,
	// kernel to kernel.
	Sendfile int64
	// CopyFileRange counts bytes moved by copy_file_range(2) from the data
	// file to a regular file (the file system may share the blocks
	// instead of copying them).
	CopyFileRange int64
	// Mapped counts bytes written with write(2) (or the writer's Write)
	// straight from the read-only mapping: the path for writers the
	// kernel cannot feed, and for whatever the kernel refused. It is
	// never read(2) into a buffer first.
	Mapped int64
	// Meta counts the bytes of the two meta pages, the only part built
	// in user space.
	Meta int64
}

// Total returns the bytes written.
func (s WriteStats) Total() int64 { return s.Sendfile + s.CopyFileRange + s.Mapped + s.Meta }

// mappedChunk is how much of the mapping one Write call is handed: large
// enough to amortize the call, small enough that a writer which copies
// (a bytes.Buffer) grows in steps.
const mappedChunk = 1 << 20

// WriteTo writes a consistent image of the database as this transaction
// sees it: a valid mapkv file of exactly Size() bytes, whatever commits
// happen meanwhile. It returns the bytes written. See WriteToStats for how
// the bytes move and what an error leaves behind.
func (tx *Tx) WriteTo(w io.Writer) (int64, error) {
	s, err := tx.WriteToStats(w)
	return s.Total(), err
}

// WriteToStats is WriteTo that also says which path moved the bytes.
//
// The image is the data file's first Size() bytes with its two meta pages
// rebuilt from the transaction's own meta (the file's meta slots may
// already hold newer commits). The metas are the only bytes built in user
// space. The rest moves kernel to kernel where the kernel can:
//
//   - sendfile(2) when w is a *net.TCPConn, a stream *net.UnixConn, or an
//     *os.File that is not a regular file (a pipe, a socket, a device);
//   - copy_file_range(2) when w is a regular *os.File, falling back to
//     sendfile if the file systems refuse (the bytes land at w's current
//     offset, as with Write);
//   - otherwise, and for whatever the kernel refused, w.Write straight
//     from the read-only mapping: never a read(2) into a buffer.
//
// On Linux, a *net.TCPConn with no TCP_NOTSENT_LOWAT of its own gets that
// option set to 64 KiB for the duration of the sendfile stream, and put
// back as it was before WriteTo returns. It keeps sendfile from queueing
// the whole send buffer ahead of the window: on loopback that made the
// receiving side do the sender's transmit work and cost two to three
// times the CPU per byte (see streamNotSentLowat). A value the caller set,
// or a system default (net.ipv4.tcp_notsent_lowat) of 64 KiB or less, is
// left alone; no other socket option is touched.
//
// The data file is always read at explicit offsets, never through its
// shared file offset, so any number of WriteTo calls may run at once (in
// different transactions: a Tx is not for concurrent use). A socket that
// would block makes the goroutine wait in the runtime poller, honouring
// the socket's write deadline; a peer that goes away ends the call with
// its error (EPIPE, ECONNRESET, a closed connection).
//
// The transaction's pages stay pinned while the image streams: writers go
// on committing, and only pages this transaction can see are kept from
// reuse (Stats.PinnedPageN). The file is never cut short beneath an open
// reader (see DB.shrink); if another process truncates it anyway, the
// kernel copies stop at the end of the file, the rest is taken from the
// mapping, and touching the missing pages there is an error wrapping
// ErrCorrupt. An error may leave a partial image in w; a nil error means
// exactly Size() bytes were written.
//
// For a writable transaction the image is the committed state it began
// from; its own changes are not in it.
func (tx *Tx) WriteToStats(w io.Writer) (WriteStats, error) {
	var s WriteStats
	if tx.closed {
		return s, ErrTxClosed
	}
	if w == nil {
		return s, fmt.Errorf("%w: nil writer", ErrInvalidOptions) // fix(reliability): it panicked
	}
	err := guard(func() error {
		metas := tx.metaPages()
		n, err := w.Write(metas)
		s.Meta += int64(n)
		if err != nil {
			return err
		}
		if n != len(metas) {
			return io.ErrShortWrite
		}
		off, size := int64(len(metas)), tx.Size()
		if off, err = tx.copyFile(w, off, size, &s); err != nil {
			return err
		}
		return tx.writeMapped(w, off, size, &s)
	})
	return s, err
}

// writeMapped writes [off, end) of the image straight from the read-only
// mapping.
func (tx *Tx) writeMapped(w io.Writer, off, end int64, s *WriteStats) error {
	data := tx.m.region.Data
	for off < end {
		next := min(off+mappedChunk, end)
		n, err := w.Write(data[off:next])
		s.Mapped += int64(n)
		if err != nil {
			if isFault(err) {
				// write(2) met a hole in the mapping: the kernel's
				// way of saying what SIGBUS says to a load.
				return corrupt(tx.db.path, fmt.Errorf("writing bytes %d-%d of the image from the mapping (was the file truncated by another process?): %w", off, next, err))
			}
			return err
		}
		if int64(n) != next-off {
			return io.ErrShortWrite
		}
		off = next
	}
	return nil
}

// metaPages builds the two meta pages of a snapshot from the transaction's
// meta. The data was verified when it was committed and the receiver
// syncs the image, so the metas are marked as synced.
func (tx *Tx) metaPages() []byte {
	ps := tx.db.pageSize
	buf := make([]byte, 2*ps)
	m := tx.meta
	m.Flags |= page.MetaSynced
	for slot := 0; slot < 2; slot++ {
		page.PutMeta(buf[slot*ps:], page.ID(slot), &m)
	}
	return buf
}
