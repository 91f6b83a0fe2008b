package page

// The free list is a bitmap of the file's pages, cut into chunks of
// ChunkBits(pageSize) pages, each chunk in its own node, so that a commit
// rewrites only the chunks whose pages it allocated or freed (a bitmap of
// the whole file would be rewritten at every commit, the way bbolt
// rewrites its whole free list).
//
// Index node (TypeFreelist, named by the meta): after the header, at
// FreeBody, u64 bits per chunk, u64 chunk count, then per chunk its node
// id u64 (0: no page of the chunk is free) and that node's birth txid u64.
//
// Chunk node (TypeFreeChunk): after the header, at FreeBody, u64 chunk
// number, then the bitmap: bit i (byte i/8, bit i%8) set means page
// chunk*bits+i is free. Bits for pages at or past the meta's page count
// are zero.

// FreeBody is where the body of free-list index and chunk nodes starts.
const FreeBody = HeaderSize

// Run is a set of contiguous pages [Start, Start+Len).
type Run struct {
	Start ID
	Len   uint64
}

// End returns the first page after the run.
func (r Run) End() ID { return r.Start + ID(r.Len) }

// FreeChunk is an index entry: the node holding one chunk's bitmap.
type FreeChunk struct {
	ID    ID
	Birth TxID
}

// ChunkBits returns how many pages one chunk node covers.
func ChunkBits(pageSize int) uint64 {
	return uint64((pageSize-FreeBody-8)*8) &^ 63
}

// Chunks returns how many chunks cover pgCount pages.
func Chunks(pgCount uint64, pageSize int) uint64 {
	b := ChunkBits(pageSize)
	return (pgCount + b - 1) / b
}

// FreeIndexSize returns the bytes of an index node of n chunks.
func FreeIndexSize(n int) int { return FreeBody + 16 + 16*n }

// PutFreeIndex writes the index entries into node (sized with FreeIndexSize).
func PutFreeIndex(node []byte, pageSize int, chunks []FreeChunk) {
	le.PutUint64(node[FreeBody:], ChunkBits(pageSize))
	le.PutUint64(node[FreeBody+8:], uint64(len(chunks)))
	o := FreeBody + 16
	for _, c := range chunks {
		le.PutUint64(node[o:], uint64(c.ID))
		le.PutUint64(node[o+8:], uint64(c.Birth))
		o += 16
	}
}

// DecodeFreeIndex reads an index node, checking that it matches the page
// size and covers exactly pgCount pages.
func DecodeFreeIndex(node []byte, pgCount uint64, pageSize int) ([]FreeChunk, error) {
	if len(node) < FreeBody+16 {
		// fix(reliability): PageID of a node shorter than a header panicked
		return nil, formatErr("free-list index node of %d bytes", len(node))
	}
	if NodeType(node) != TypeFreelist {
		return nil, formatErr("page %d: not a free-list index node", PageID(node))
	}
	if b := le.Uint64(node[FreeBody:]); b != ChunkBits(pageSize) {
		return nil, formatErr("page %d: free-list chunks of %d pages, expected %d", PageID(node), b, ChunkBits(pageSize))
	}
	n := le.Uint64(node[FreeBody+8:])
	if n != Chunks(pgCount, pageSize) {
		return nil, formatErr("page %d: free list of %d chunks for %d pages", PageID(node), n, pgCount)
	}
	if n > uint64(len(node)-FreeBody-16)/16 {
		return nil, formatErr("page %d: free-list index of %d chunks overflows the node", PageID(node), n)
	}
	out := make([]FreeChunk, n)
	o := FreeBody + 16
	for i := range out {
		out[i] = FreeChunk{ID(le.Uint64(node[o:])), TxID(le.Uint64(node[o+8:]))}
		if out[i].ID == 1 || out[i].ID != 0 && uint64(out[i].ID) >= pgCount {
			return nil, formatErr("page %d: free-list chunk %d at page %d outside the file", PageID(node), i, out[i].ID)
		}
		o += 16
	}
	return out, nil
}

// FreeChunkBitmap returns the bitmap of a chunk node after checking that
// the node is chunk number chunk. The bitmap may be written (a new node).
func FreeChunkBitmap(node []byte, chunk uint64, pageSize int) ([]byte, error) {
	bits := ChunkBits(pageSize)
	end := FreeBody + 8 + int(bits/8)
	if len(node) < end {
		// fix(reliability): PageID of a node shorter than a header panicked
		return nil, formatErr("free-list chunk node of %d bytes", len(node))
	}
	if NodeType(node) != TypeFreeChunk {
		return nil, formatErr("page %d: not a free-list chunk node", PageID(node))
	}
	if c := le.Uint64(node[FreeBody:]); c != chunk {
		return nil, formatErr("page %d: free-list chunk %d, expected %d", PageID(node), c, chunk)
	}
	return node[FreeBody+8 : end], nil
}

// PutFreeChunk starts a chunk node for chunk number chunk and returns its
// cleared bitmap to fill.
func PutFreeChunk(node []byte, chunk uint64, pageSize int) []byte {
	le.PutUint64(node[FreeBody:], chunk)
	bm := node[FreeBody+8 : FreeBody+8+int(ChunkBits(pageSize)/8)]
	clear(bm)
	return bm
}

// SetBits marks pages [from, to) of the chunk starting at page base free.
func SetBits(bm []byte, base, from, to ID) {
	for p := from; p < to; p++ {
		i := uint64(p - base)
		bm[i/8] |= 1 << (i % 8)
	}
}

// BitmapRuns calls fn for each run of free pages in a chunk's bitmap,
// checking that none lies below page 2 or at or past pgCount.
func BitmapRuns(bm []byte, base ID, pgCount uint64, fn func(Run)) error {
	var run Run
	for i, b := range bm {
		if b == 0 {
			if run.Len > 0 {
				fn(run)
				run = Run{}
			}
			continue
		}
		for j := 0; j < 8; j++ {
			p := base + ID(i*8+j)
			if b&(1<<j) == 0 {
				if run.Len > 0 {
					fn(run)
					run = Run{}
				}
				continue
			}
			if p < 2 || uint64(p) >= pgCount {
				return formatErr("free-list chunk at page %d marks page %d free, outside [2, %d)", base, p, pgCount)
			}
			if run.Len == 0 {
				run.Start = p
			}
			run.Len++
		}
	}
	if run.Len > 0 {
		fn(run)
	}
	return nil
}
