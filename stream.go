package mapkv

import (
	"github.com/mapkv/mapkv/mmap"
	"github.com/mapkv/mapkv/page"
)

// A commit that appends (a load in key order) builds its nodes side by
// side at the end of the file, and used to write them all once its merge
// was done, then flush them: the disk sat idle during the merge, and the
// merge's CPU during the flush. The streamer writes each long run of
// sealed nodes while the merge goes on, and starts its writeback at once
// (sync_file_range), so that the commit's flush finds most of its pages
// on their way to the disk already. Only runs of at least streamMin
// contiguous bytes are streamed: the scattered nodes of random commits
// are left to writeFresh, as before, and cost the streamer a comparison
// each.
//
// The nodes go to pages no meta names, so writing them early changes
// nothing for a crash: until the commit's meta is written (after its
// flush, or after its log record), they are free pages with garbage in
// them, as the nodes writeFresh writes are until then.
//
// Tests lower both (export_test.go), so that the model, power-loss and
// crash tests stream the runs of their small commits.
var (
	streamMin   = 64 << 10  // a run shorter than this at a gap is left to writeFresh
	streamChunk = 256 << 10 // a run is written once it is this long
)

// streamer collects the current run of sealed contiguous nodes.
type streamer struct {
	start, next page.ID
	iov         [][]byte
	ids         []page.ID
	n           int
	err         error // a write failed: stream no more
}

// stream hands the streamer node (at id), just sealed.
func (a *txAlloc) stream(id page.ID, node []byte) {
	s := a.streamer
	if s == nil || s.err != nil {
		return
	}
	if len(s.iov) > 0 && id != s.next {
		if s.n >= streamMin {
			a.streamOut()
		} else {
			s.iov, s.ids, s.n = s.iov[:0], s.ids[:0], 0
		}
	}
	if len(s.iov) == 0 {
		s.start = id
	}
	s.iov = append(s.iov, node)
	s.ids = append(s.ids, id)
	s.n += len(node)
	s.next = id + page.ID(len(node)/a.tx.db.pageSize)
	if s.n >= streamChunk {
		a.streamOut()
	}
}

// streamOut writes the streamer's run and starts its writeback. After a
// failed write the streamer writes nothing more, and the commit fails
// once its merge is done (see streamErr).
func (a *txAlloc) streamOut() {
	s := a.streamer
	db := a.tx.db
	off := int64(s.start) * int64(db.pageSize)
	if s.err == nil {
		s.err = a.writeAt(s.start, s.iov, true)
		if s.err == nil {
			if a.streamed == nil {
				a.streamed = map[page.ID]struct{}{}
			}
			for _, id := range s.ids {
				a.streamed[id] = struct{}{}
			}
			db.streamedBytes += int64(s.n)
			_ = mmap.StartWritebackRange(db.file, off, int64(s.n)) // only a head start
		}
	}
	s.iov, s.ids, s.n = s.iov[:0], s.ids[:0], 0
}

// streamErr is the error of the commit's streamed writes, if one failed.
func (a *txAlloc) streamErr() error {
	if a.streamer == nil {
		return nil
	}
	return a.streamer.err
}

// toWrite returns the nodes writeFresh and writeBeside still have to
// write: sortedNodes without those streamed.
func (a *txAlloc) toWrite() []idBuf {
	if a.rest == nil {
		all := a.sortedNodes()
		if len(a.streamed) == 0 {
			a.rest = all
		} else {
			a.rest = make([]idBuf, 0, len(all))
			for _, nd := range all {
				if _, ok := a.streamed[nd.id]; !ok {
					a.rest = append(a.rest, nd)
				}
			}
		}
	}
	return a.rest
}

// unstream forgets node id, freed by its own commit: its page may take
// another node, which must still be written. A run not yet written that
// holds it is dropped.
func (a *txAlloc) unstream(id page.ID) {
	delete(a.streamed, id)
	if s := a.streamer; s != nil {
		for _, x := range s.ids {
			if x == id {
				s.iov, s.ids, s.n = s.iov[:0], s.ids[:0], 0
				return
			}
		}
	}
}
