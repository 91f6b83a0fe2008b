package mapkv

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/mapkv/mapkv/btree"
	"github.com/mapkv/mapkv/page"
)

// Nodes logged as puts.
//
// Most leaves a commit of scattered keys rewrites take one or two puts
// (btree's in-place path), and most of them were written by an earlier
// commit of the same log generation: on random loads of 1M keys, 79% of
// the nodes 10,000-key commits replaced, 77% at 1,000 keys. The log then
// stores such a leaf as the page it replaces and the puts (a few hundred
// bytes instead of the 2-3 KB of its image), and the replay, which
// applies the generation's records in order, finds that page as the
// earlier record left it and builds the leaf again with
// btree.RebuildInPlace, checked against the checksum the record lists.
//
// Branches go the same way (log version 4): a branch that replaces one
// page and stays one page is told as the puts of child references that
// make it from the branch it replaces (btree's branchPuts: a leaf that
// splits replaces one reference and adds one). The branches near the
// root, which every commit rewrites, were nearly always written by the
// record before: a one-key commit into a 1M-key tree of three levels of
// branches logged about 16 KiB (three branch images of 3-4 KB each and
// the leaves), and the replay builds them again with btree.Rebuild,
// which tells branches from leaves by the base page's type.
//
// A page written by an earlier record of the same generation may serve:
// the replay has rebuilt it when it needs it, whatever the kernel wrote
// back. A page last written before the generation began is on disk as
// the checkpoint left it only until a later commit reuses it (the one
// right after the commit that freed it may), and the kernel may write
// that back before a crash. A small commit (log version 5) logs a node
// as puts into such a page all the same, and holds the page until the
// log starts over (freelist.hold; walRecord, holdable): nothing writes
// it before the data file is flushed again, so the replay finds it as
// the checkpoint left it. A one-key commit into a 1M-key file then logs
// its leaf as a hundred-odd bytes of puts instead of a 3-4 KB image, and
// its record, 5-9 KiB before, fits one 4 KiB block two times in three
// (a direct write here takes about 10 µs more for each further 4 KiB).
// The held pages count against the log's capacity as the images would
// have (a generation holds no more of the data file than its log takes),
// and only commits of at most holdMaxNodes nodes into a log at its base
// size hold any: the file grows by at most Options.WALSize while small
// commits go on, and the pages are reused after the next checkpoint.
// Larger commits log such leaves whole. The data file always gets the
// whole node: only the log is shorter.

// entryPuts marks a record's node entry (its pages field) whose stored
// bytes are puts over an earlier node, not the node's image.
const entryPuts = 1 << 31

// putsFixed is the size of a puts payload without its puts: the base
// page (8), the count (4) and the trailing checksum (8).
const putsFixed = 8 + 4 + 8

// appendPuts appends to *buf the payload that logs a node as muts put
// into the leaf at base, preceded by its length (4 bytes, not logged),
// and returns where it begins plus one, for sealed.puts. It returns 0
// and appends nothing if the payload would not be shorter than limit
// (the bytes the node's image takes) or the buffer would pass 4 GiB.
//
// The payload: base page id (8), number of puts (4), then each put's key
// length and value length (uvarints) and its key and value bytes, and
// last the xxhash64 of the bytes before it (8).
func appendPuts(buf *[]byte, base page.ID, muts []btree.Mutation, limit int) uint32 {
	n := putsFixed
	for _, m := range muts {
		n += binary.MaxVarintLen32*2 + len(m.Key) + len(m.Value)
		if n >= limit {
			return 0 // the image is no longer than the puts: log it
		}
	}
	b := *buf
	at := len(b)
	if uint64(at)+4+uint64(n) >= math.MaxUint32 {
		return 0
	}
	b = append(b, 0, 0, 0, 0)
	start := len(b)
	b = binary.LittleEndian.AppendUint64(b, uint64(base))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(muts)))
	for _, m := range muts {
		b = binary.AppendUvarint(b, uint64(len(m.Key)))
		b = binary.AppendUvarint(b, uint64(len(m.Value)))
		b = append(b, m.Key...)
		b = append(b, m.Value...)
	}
	b = binary.LittleEndian.AppendUint64(b, xxhash.Sum64(b[start:]))
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-start))
	*buf = b
	return uint32(at) + 1
}

// putsAt returns the payload appendPuts put at ref (its return value) in
// buf.
func putsAt(buf []byte, ref uint32) []byte {
	at := int(ref - 1)
	n := int(binary.LittleEndian.Uint32(buf[at:]))
	return buf[at+4 : at+4+n : at+4+n]
}

// putsBase returns the page a payload's puts go into.
func putsBase(p []byte) page.ID { return page.ID(binary.LittleEndian.Uint64(p)) }

// decodePuts checks a payload read back from the log and returns its
// base page and its puts (slices of p). ok is false if it is torn or
// malformed.
func decodePuts(p []byte) (base page.ID, muts []btree.Mutation, ok bool) {
	le := binary.LittleEndian
	if len(p) < putsFixed || le.Uint64(p[len(p)-8:]) != xxhash.Sum64(p[:len(p)-8]) {
		return 0, nil, false
	}
	base = page.ID(le.Uint64(p))
	count := le.Uint32(p[8:])
	rest := p[12 : len(p)-8]
	if uint64(count) > uint64(len(rest))/2 {
		return 0, nil, false // each put takes two bytes at least
	}
	muts = make([]btree.Mutation, 0, count)
	for range count {
		kl, a := binary.Uvarint(rest)
		if a <= 0 {
			return 0, nil, false
		}
		vl, b := binary.Uvarint(rest[a:])
		if b <= 0 || kl > uint64(len(rest)) || vl > uint64(len(rest)) || uint64(a+b)+kl+vl > uint64(len(rest)) {
			return 0, nil, false
		}
		rest = rest[a+b:]
		muts = append(muts, btree.Mutation{Key: rest[:kl:kl], Value: rest[kl : kl+vl : kl+vl]})
		rest = rest[kl+vl:]
	}
	if len(rest) != 0 {
		return 0, nil, false
	}
	return base, muts, true
}

// SealPuts seals a leaf the in-place path built (btree.PutsSealer) and,
// when the commit may go through the log, keeps the puts that made it.
func (a *txAlloc) SealPuts(id page.ID, node []byte, used int, base page.ID, _ []byte, muts []btree.Mutation) {
	s := seal(node, used)
	if a.tx.db.wal != nil {
		s.puts = appendPuts(&a.puts, base, muts, used)
	}
	a.fresh[id] = s
	a.stream(id, node)
}

// SealPuts is txAlloc.SealPuts for the fork's goroutine: the puts go to
// the fork's buffer until Join.
func (f *forkAlloc) SealPuts(id page.ID, node []byte, used int, base page.ID, _ []byte, muts []btree.Mutation) {
	s := seal(node, used)
	if f.a.tx.db.wal != nil {
		s.puts = appendPuts(&f.puts, base, muts, used)
	}
	f.fresh[id] = s
}

// joinPuts moves the fork's puts into a's buffer and returns how much
// the references of the fork's nodes move (0: they are dropped, the
// buffer would pass 4 GiB).
func (a *txAlloc) joinPuts(f *forkAlloc) (shift uint32, keep bool) {
	if len(f.puts) == 0 {
		return 0, true
	}
	if uint64(len(a.puts))+uint64(len(f.puts)) >= math.MaxUint32 {
		return 0, false
	}
	shift = uint32(len(a.puts))
	a.puts = append(a.puts, f.puts...)
	f.puts = f.puts[:0]
	return shift, true
}

// pageSet is a set of page ids, one bit each: the first pages of the
// nodes the records of the log's generation wrote (wal.logged).
type pageSet []uint64

func (s *pageSet) add(id page.ID) {
	w := int(id / 64)
	if w >= len(*s) {
		*s = append(*s, make([]uint64, w+1-len(*s))...)
	}
	(*s)[w] |= 1 << (id % 64)
}

func (s pageSet) has(id page.ID) bool {
	w := id / 64
	return w < page.ID(len(s)) && s[w]&(1<<(id%64)) != 0
}

// rebuildPuts builds the node a record logged as puts (muts into the
// node at base, as decodePuts found them; node id, commit txid, checksum
// sum) into dst, one page, reading the page the puts go into with read
// (the data file, as the replay has left it so far: written by an
// earlier record, or as the last flush left it).
func rebuildPuts(dst []byte, base page.ID, muts []btree.Mutation, id page.ID, txid page.TxID, sum uint64, read func(b []byte, id page.ID) error) (err error) {
	old := make([]byte, len(dst))
	if err := read(old, base); err != nil {
		return err
	}
	if err := page.Verify(old, base, 0); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil { // Rebuild checks its input; a slip is still no panic
			err = fmt.Errorf("rebuilding node %d: %v", id, r)
		}
	}()
	if _, err := btree.Rebuild(dst, old, id, txid, muts); err != nil {
		return err
	}
	if got := page.Seal(dst); got != sum {
		return fmt.Errorf("node %d rebuilt from page %d and %d puts: checksum %016x, the record lists %016x", id, base, len(muts), got, sum)
	}
	return nil
}

// keepScratch empties a puts buffer for the next commit, letting the GC
// have one grown past 64 MiB (a commit of very many scattered keys).
func keepScratch(b []byte) []byte {
	if cap(b) > 64<<20 {
		return nil
	}
	return b[:0]
}
