package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cespare/xxhash/v2"

	"github.com/mapkv/mapkv/page"
)

// pageFile reads the pages of a mapkv file directly with pread, for the
// pages and page commands. It does not use the engine, so it works on
// files the engine refuses to open, and it trusts nothing it reads: every
// count and offset is checked before use (the page package's accessors
// check the rest), so no bytes make it panic.
type pageFile struct {
	f      *os.File
	path   string
	size   int64 // bytes in the file
	ps     int   // page size
	metas  [2]metaSlot
	newest int // slot of the newest valid meta, -1 when neither is valid

	owners map[page.ID]string // what reaches each page, from walk
	free   []page.Run         // the newest meta's free pages, in order
	walked bool
}

// metaSlot is one of the two meta pages as decoded.
type metaSlot struct {
	meta page.Meta
	err  error
}

// openPageFile opens path and reads its meta pages. pageSize, when not
// 0, overrides the page size the metas give (for a file whose metas are
// both damaged).
func openPageFile(path string, pageSize int) (*pageFile, error) {
	if err := mustExist(path); err != nil {
		return nil, err
	}
	if pageSize != 0 && !page.ValidPageSize(pageSize) {
		return nil, fmt.Errorf("--page-size %d: want a power of two from %d to %d", pageSize, page.MinPageSize, page.MaxPageSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	pf := &pageFile{f: f, path: path, size: fi.Size(), newest: -1}
	buf := make([]byte, page.MetaSize)
	pf.metas[0] = pf.decodeMeta(buf, 0, 0)
	ps := pageSize
	if ps == 0 && pf.metas[0].err == nil {
		ps = int(pf.metas[0].meta.PageSize)
	}
	if ps != 0 {
		pf.metas[1] = pf.decodeMeta(buf, 1, ps)
	} else {
		// Meta 0 is damaged: find meta 1 at each page size the format allows.
		pf.metas[1].err = errors.New("no valid meta page at any page size")
		for s := page.MinPageSize; s <= page.MaxPageSize; s *= 2 {
			if m := pf.decodeMeta(buf, 1, s); m.err == nil && int(m.meta.PageSize) == s {
				pf.metas[1], ps = m, s
				break
			}
		}
	}
	if ps == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: no valid meta page, so the page size is unknown (give it with --page-size): %v; %v",
			path, pf.metas[0].err, pf.metas[1].err)
	}
	pf.ps = ps
	for slot, m := range pf.metas {
		if m.err == nil && int(m.meta.PageSize) != ps {
			pf.metas[slot].err = fmt.Errorf("meta %d: page size %d, the file's is %d", slot, m.meta.PageSize, ps)
		}
	}
	for slot, m := range pf.metas {
		if m.err == nil && (pf.newest < 0 || m.meta.TxID > pf.metas[pf.newest].meta.TxID) {
			pf.newest = slot
		}
	}
	return pf, nil
}

func (pf *pageFile) decodeMeta(buf []byte, slot page.ID, ps int) metaSlot {
	if _, err := pf.f.ReadAt(buf, int64(slot)*int64(ps)); err != nil {
		return metaSlot{err: fmt.Errorf("meta %d: %w", slot, readErr(err))}
	}
	m, err := page.DecodeMeta(buf, slot)
	return metaSlot{meta: m, err: err}
}

func readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("beyond the end of the file")
	}
	return err
}

func (pf *pageFile) close() error { return pf.f.Close() }

// filePages is the number of whole pages in the file.
func (pf *pageFile) filePages() uint64 { return uint64(pf.size / int64(pf.ps)) }

// hwm is the high-water mark of the newest meta: pages past it are not
// part of the database. Without a valid meta it is the whole file.
func (pf *pageFile) hwm() uint64 {
	if pf.newest < 0 {
		return pf.filePages()
	}
	return min(pf.metas[pf.newest].meta.PgCount, pf.filePages())
}

// readPage returns the first page of page id.
func (pf *pageFile) readPage(id page.ID) ([]byte, error) {
	if uint64(id) >= pf.filePages() {
		return nil, fmt.Errorf("page %d: beyond the end of the file (%d pages)", id, pf.filePages())
	}
	b := make([]byte, pf.ps)
	if _, err := pf.f.ReadAt(b, int64(id)*int64(pf.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, readErr(err))
	}
	return b, nil
}

// maxNodeRead caps the bytes readNode loads at once; larger nodes (big
// overflow values) are checked by streaming (nodeChecksum).
const maxNodeRead = 64 << 20

// nodePages returns how many pages the node at id spans according to its
// header, or an error when that runs past limit pages.
func nodePages(first []byte, id page.ID, limit uint64) (uint64, error) {
	n := uint64(page.Overflow(first)) + 1
	if uint64(id) >= limit || n > limit-uint64(id) {
		return 0, fmt.Errorf("page %d: %d overflow page(s) run past the end (%d pages)", id, n-1, limit)
	}
	return n, nil
}

// readNode returns the node at id: its first page and the overflow pages
// its header names, which must lie below limit pages.
func (pf *pageFile) readNode(id page.ID, limit uint64) ([]byte, error) {
	first, err := pf.readPage(id)
	if err != nil {
		return nil, err
	}
	n, err := nodePages(first, id, limit)
	if err != nil {
		return nil, err
	}
	if n == 1 {
		return first, nil
	}
	if n*uint64(pf.ps) > maxNodeRead {
		return nil, fmt.Errorf("page %d: a node of %d pages is too large to load", id, n)
	}
	b := make([]byte, n*uint64(pf.ps))
	if _, err := pf.f.ReadAt(b, int64(id)*int64(pf.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, readErr(err))
	}
	return b, nil
}

// checksumStatus verifies the node at id against its stored checksum,
// streaming it from the file (nodes of any size), and says "ok" or what
// is wrong.
func (pf *pageFile) checksumStatus(id page.ID, first []byte, limit uint64) string {
	n, err := nodePages(first, id, limit)
	if err != nil {
		return "unknown (overflow past the end)"
	}
	h := xxhash.New()
	// The checksum covers every byte after the checksum field itself
	// (page.Sum).
	sr := io.NewSectionReader(pf.f, int64(id)*int64(pf.ps)+8, int64(n)*int64(pf.ps)-8)
	if _, err := io.Copy(h, sr); err != nil {
		return "unreadable: " + err.Error()
	}
	if got, want := h.Sum64(), page.Checksum(first); got != want {
		return fmt.Sprintf("BAD (stored %016x, computed %016x)", want, got)
	}
	return "ok"
}

// walk records what reaches every page from the newest meta: the free
// list, bucket trees (by bucket path) and overflow values. Damage stops
// the walk of that subtree only; loops are cut by never visiting a page
// twice.
func (pf *pageFile) walk() {
	if pf.walked {
		return
	}
	pf.walked = true
	pf.owners = map[page.ID]string{}
	if pf.newest < 0 {
		return
	}
	m := pf.metas[pf.newest].meta
	limit := pf.hwm()
	pf.walkFreelist(m.Freelist, limit)
	pf.walkTree(m.Root.Root, "", 0, 0, limit)
}

// walkFreelist records the free-list index at id, its chunk nodes, and
// the free pages their bitmaps mark, as runs in page order.
func (pf *pageFile) walkFreelist(id page.ID, limit uint64) {
	if id == 0 {
		return
	}
	n, err := pf.readNode(id, limit)
	if err != nil || page.PageID(n) != id {
		return
	}
	pf.own(id, uint64(len(n)/pf.ps), "free list")
	chunks, err := page.DecodeFreeIndex(n, limit, pf.ps)
	if err != nil {
		return
	}
	bits := page.ChunkBits(pf.ps)
	for i, c := range chunks {
		if c.ID == 0 {
			continue
		}
		cn, err := pf.readNode(c.ID, limit)
		if err != nil || page.PageID(cn) != c.ID {
			continue
		}
		pf.own(c.ID, uint64(len(cn)/pf.ps), fmt.Sprintf("free list: chunk %d", i))
		bm, err := page.FreeChunkBitmap(cn, uint64(i), pf.ps)
		if err != nil {
			continue
		}
		page.BitmapRuns(bm, page.ID(uint64(i)*bits), limit, func(r page.Run) {
			if k := len(pf.free); k > 0 && pf.free[k-1].End() == r.Start {
				pf.free[k-1].Len += r.Len
				return
			}
			if k := len(pf.free); k > 0 && r.Start < pf.free[k-1].End() {
				return // overlapping chunks: a damaged index
			}
			pf.free = append(pf.free, r)
		})
	}
}

func (pf *pageFile) own(id page.ID, n uint64, what string) bool {
	if _, seen := pf.owners[id]; seen {
		return false
	}
	for i := uint64(0); i < n; i++ {
		pf.owners[id+page.ID(i)] = what
	}
	return true
}

func (pf *pageFile) walkTree(id page.ID, path string, depth, nesting int, limit uint64) {
	if id == 0 || depth > page.MaxDepth || nesting > page.MaxDepth {
		return
	}
	n, err := pf.readNode(id, limit)
	if err != nil || page.PageID(n) != id {
		return
	}
	owner := "root bucket"
	if path != "" {
		owner = "bucket " + path
	}
	if !pf.own(id, uint64(len(n)/pf.ps), owner) {
		return
	}
	typ := page.NodeType(n)
	if (typ != page.TypeBranch && typ != page.TypeLeaf) || page.CheckNode(n, typ) != nil {
		return
	}
	for i := 0; i < page.Count(n); i++ {
		if typ == page.TypeBranch {
			child, _ := page.BranchChild(n, i)
			pf.walkTree(child, path, depth+1, nesting, limit)
			continue
		}
		f, k, v, ok := page.LeafElem(n, i)
		if !ok || f&(page.FlagBucket|page.FlagOverflow) == 0 {
			continue
		}
		r, ok := page.DecodeRef(v)
		if !ok {
			continue
		}
		if f&page.FlagBucket != 0 {
			sub := formatName(k)
			if path != "" {
				sub = path + "/" + sub
			}
			pf.walkTree(r.Root, sub, 0, nesting+1, limit)
			continue
		}
		if first, err := pf.readPage(r.Root); err == nil {
			if cnt, err := nodePages(first, r.Root, limit); err == nil {
				pf.own(r.Root, cnt, owner+": value of "+formatAuto.encode(k))
			}
		}
	}
}

// freeRun returns the free run holding id, if any.
func (pf *pageFile) freeRun(id page.ID) (page.Run, bool) {
	for _, r := range pf.free {
		if id >= r.Start && id < r.End() {
			return r, true
		}
	}
	return page.Run{}, false
}
