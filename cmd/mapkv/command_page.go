package main

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv/page"
)

func init() { register(newPageCmd) }

func newPageCmd(g *globals) *cobra.Command {
	var showHex bool
	var format string
	var pageSize int
	cmd := &cobra.Command{
		Use:   "page DB ID...",
		Short: "Decode pages: header, checksum, elements; --hex for the raw bytes",
		Long: `Page reads the given pages from the file (IDs or ranges such as 10-14) and
decodes each: its header (type, the id it claims, txid, overflow pages,
element count), whether its checksum verifies, what reaches it, and its
contents: the fields of a meta page, the keys and children of a branch,
the keys and values of a leaf (nested buckets and overflow values shown
as references), the runs of a free list. --hex adds the raw bytes. It
reads the file directly, so it works on damaged files.`,
		Args: usageArgs(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFormat(format)
			if err != nil {
				return err
			}
			var ids []page.ID
			for _, a := range args[1:] {
				r, err := parseIDs(a)
				if err != nil {
					return err
				}
				ids = append(ids, r...)
			}
			pf, err := openPageFile(args[0], pageSize)
			if err != nil {
				return err
			}
			defer pf.close()
			pf.walk()
			out := cmd.OutOrStdout()
			for i, id := range ids {
				if i > 0 {
					fmt.Fprintln(out)
				}
				if err := pf.describe(out, id, f, showHex); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&showHex, "hex", false, "also print the raw bytes of each page (of the whole node)")
	cmd.Flags().IntVar(&pageSize, "page-size", 0, "page size to assume when both meta pages are damaged")
	addFormatFlag(cmd, &format)
	return cmd
}

// parseIDs reads "12" or "10-14".
func parseIDs(s string) ([]page.ID, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("page id %q: not a number", s)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 64); err != nil || b < a {
			return nil, fmt.Errorf("page range %q: want FIRST-LAST", s)
		}
		if b-a >= 1<<16 {
			return nil, fmt.Errorf("page range %q: more than 65536 pages", s)
		}
	}
	var ids []page.ID
	for i := a; i <= b; i++ {
		ids = append(ids, page.ID(i))
	}
	return ids, nil
}

// describe prints page id.
func (pf *pageFile) describe(w io.Writer, id page.ID, f byteFormat, showHex bool) error {
	first, err := pf.readPage(id)
	if err != nil {
		fmt.Fprintf(w, "page %d: %s\n", id, message(err))
		return nil
	}
	t := newTable(w)
	if id < 2 {
		pf.describeMeta(t, id)
		t.Flush()
		if showHex {
			hexDump(w, first)
		}
		return nil
	}
	hwm := pf.hwm()
	typ := page.NodeType(first)
	node := first
	var loadErr error
	if n, err := pf.readNode(id, max(hwm, uint64(id)+1)); err == nil {
		node = n
	} else {
		loadErr = err
	}
	fmt.Fprintf(t, "page %d:\t%s\n", id, typ)
	if run, ok := pf.freeRun(id); ok {
		fmt.Fprintf(t, "status:\tfree (in run %d-%d of the newest meta's free list); the bytes below are stale\n", run.Start, run.End()-1)
	} else if owner, ok := pf.owners[id]; ok {
		fmt.Fprintf(t, "reached from:\t%s\n", owner)
	} else if uint64(id) >= hwm {
		fmt.Fprintf(t, "status:\tbeyond the high-water mark (%d pages): not part of the database\n", hwm)
	} else {
		fmt.Fprintf(t, "reached from:\tnothing (unreachable)\n")
	}
	mismatch := ""
	if claimed := page.PageID(first); claimed != id {
		mismatch = "  (MISMATCH: not this page)"
	}
	fmt.Fprintf(t, "header id:\t%d%s\n", page.PageID(first), mismatch)
	fmt.Fprintf(t, "txid:\t%d\n", page.Birth(first))
	fmt.Fprintf(t, "overflow:\t%s\n", plural(int64(page.Overflow(first)), "page"))
	fmt.Fprintf(t, "checksum:\t%s\n", pf.checksumStatus(id, first, max(hwm, uint64(id)+1)))
	if loadErr != nil {
		fmt.Fprintf(t, "contents:\tnot decoded: %s\n", message(loadErr))
		t.Flush()
	} else {
		switch typ {
		case page.TypeBranch, page.TypeLeaf:
			fmt.Fprintf(t, "count:\t%d\n", page.Count(node))
			t.Flush()
			describeElems(w, node, typ, f)
		case page.TypeFreelist:
			t.Flush()
			describeFreeIndex(w, node, hwm, pf.ps)
		case page.TypeFreeChunk:
			t.Flush()
			describeFreeChunk(w, node, hwm, pf.ps)
		case page.TypeOverflow:
			t.Flush()
			body := node[page.HeaderSize:]
			fmt.Fprintf(w, "value bytes (%d in the node, the value's length is in the leaf that references it):\n", len(body))
			fmt.Fprintf(w, "  %s\n", clipEncode(f, body, 64))
		default:
			t.Flush()
			fmt.Fprintln(w, "contents: not a node (no known type)")
		}
	}
	if showHex {
		hexDump(w, node)
	}
	return nil
}

func (pf *pageFile) describeMeta(t io.Writer, id page.ID) {
	m := pf.metas[id]
	fmt.Fprintf(t, "page %d:\tmeta\n", id)
	if m.err != nil {
		fmt.Fprintf(t, "status:\tinvalid: %s\n", message(m.err))
		return
	}
	status := "previous commit"
	if int(id) == pf.newest {
		status = "newest commit"
	}
	fmt.Fprintf(t, "status:\tvalid, %s\n", status)
	mm := m.meta
	fmt.Fprintf(t, "format version:\t%d\n", page.Version)
	fmt.Fprintf(t, "txid:\t%d\n", mm.TxID)
	fmt.Fprintf(t, "page size:\t%d\n", mm.PageSize)
	fmt.Fprintf(t, "page count:\t%d\n", mm.PgCount)
	fmt.Fprintf(t, "root:\tpage %d (tx %d), sequence %d\n", mm.Root.Root, mm.Root.Birth, mm.Root.Seq)
	fmt.Fprintf(t, "free list:\tpage %d (tx %d)\n", mm.Freelist, mm.FreeTx)
	var notes []string
	if mm.Flags&page.MetaSynced != 0 {
		notes = append(notes, "synced: data flushed before this meta")
	}
	if mm.Flags&page.MetaFreeDeferred != 0 {
		notes = append(notes, "free list deferred: the commit went through the log; every page not reachable is free")
	}
	desc := ""
	if len(notes) > 0 {
		desc = " (" + strings.Join(notes, "; ") + ")"
	}
	fmt.Fprintf(t, "flags:\t%#x%s\n", mm.Flags, desc)
	fmt.Fprintf(t, "commit record:\t%d pages, hash %016x\n", mm.CommitPages, mm.CommitHash)
}

// describeFreeIndex prints the chunks a free-list index names.
func describeFreeIndex(w io.Writer, n []byte, pgCount uint64, ps int) {
	chunks, err := page.DecodeFreeIndex(n, max(pgCount, 2), ps)
	if err != nil {
		fmt.Fprintf(w, "free-list index: %s\n", message(err))
		return
	}
	bits := page.ChunkBits(ps)
	fmt.Fprintf(w, "free-list index: %s of %d pages each\n", plural(int64(len(chunks)), "chunk"), bits)
	t := newTable(w)
	fmt.Fprintln(t, "  CHUNK\tPAGES\tNODE\tNODE TXID")
	for i, c := range chunks {
		node := "-  (no free page)"
		if c.ID != 0 {
			node = fmt.Sprintf("%d\t%d", c.ID, c.Birth)
		}
		lo := uint64(i) * bits
		fmt.Fprintf(t, "  %d\t%d-%d\t%s\n", i, lo, lo+bits-1, node)
	}
	t.Flush()
}

// describeFreeChunk prints the runs of free pages a chunk node marks.
func describeFreeChunk(w io.Writer, n []byte, pgCount uint64, ps int) {
	if len(n) < page.FreeBody+8 {
		fmt.Fprintln(w, "free-list chunk: short node")
		return
	}
	chunk := binary.LittleEndian.Uint64(n[page.FreeBody:])
	bm, err := page.FreeChunkBitmap(n, chunk, ps)
	if err != nil {
		fmt.Fprintf(w, "free-list chunk: %s\n", message(err))
		return
	}
	var runs []page.Run
	if chunk > (1<<63)/page.ChunkBits(ps) {
		fmt.Fprintf(w, "free-list chunk %d: beyond any file\n", chunk)
		return
	}
	err = page.BitmapRuns(bm, page.ID(chunk*page.ChunkBits(ps)), max(pgCount, 2), func(r page.Run) { runs = append(runs, r) })
	fmt.Fprintf(w, "free-list chunk %d: %s free\n", chunk, plural(int64(freePagesMarked(n, ps)), "page"))
	for _, r := range runs {
		fmt.Fprintf(w, "  %d-%d (%s)\n", r.Start, r.End()-1, plural(int64(r.Len), "page"))
	}
	if err != nil {
		fmt.Fprintf(w, "  %s\n", message(err))
	}
}

// describeElems prints the elements of a branch or leaf node.
func describeElems(w io.Writer, n []byte, typ page.Type, f byteFormat) {
	if err := page.CheckNode(n, typ); err != nil {
		fmt.Fprintf(w, "elements: not decoded: %s\n", message(err))
		return
	}
	t := newTable(w)
	if typ == page.TypeBranch {
		fmt.Fprintln(t, "  #\tKEY\tCHILD\tCHILD TXID")
		for i := 0; i < page.Count(n); i++ {
			k, ok := page.BranchKey(n, i)
			child, birth := page.BranchChild(n, i)
			key := clipEncode(f, k, 64)
			if !ok {
				key = "(does not fit the node)"
			}
			fmt.Fprintf(t, "  %d\t%s\t%d\t%d\n", i, key, child, birth)
		}
		t.Flush()
		return
	}
	fmt.Fprintln(t, "  #\tKEY\tVALUE")
	for i := 0; i < page.Count(n); i++ {
		flags, k, v, ok := page.LeafElem(n, i)
		if !ok {
			fmt.Fprintf(t, "  %d\t(does not fit the node)\t\n", i)
			continue
		}
		val := clipEncode(f, v, 64)
		switch {
		case flags&page.FlagBucket != 0 && flags&page.FlagOverflow != 0:
			val = fmt.Sprintf("(invalid flags %#x)", flags)
		case flags&page.FlagBucket != 0:
			r, _ := page.DecodeRef(v)
			val = fmt.Sprintf("bucket: root page %d (tx %d), sequence %d", r.Root, r.Birth, r.Seq)
		case flags&page.FlagOverflow != 0:
			r, _ := page.DecodeRef(v)
			val = fmt.Sprintf("overflow: page %d (tx %d), %d bytes", r.Root, r.Birth, r.Seq)
		case flags != 0:
			val = fmt.Sprintf("(unknown flags %#x) %s", flags, val)
		}
		fmt.Fprintf(t, "  %d\t%s\t%s\n", i, clipEncode(f, k, 64), val)
	}
	t.Flush()
}

// clipEncode encodes at most n bytes of b, marking a cut with "...".
func clipEncode(f byteFormat, b []byte, n int) string {
	if len(b) <= n {
		return f.encode(b)
	}
	return f.encode(b[:n]) + "..."
}

// hexDump writes b as hexdump -C does: offset, 16 bytes in hex and as
// characters, a "*" for runs of lines equal to the one before, and the
// length on the last line.
func hexDump(w io.Writer, b []byte) {
	var prev []byte
	squeezed := false
	for off := 0; off < len(b); off += 16 {
		line := b[off:min(off+16, len(b))]
		if prev != nil && len(line) == 16 && string(line) == string(prev) {
			if !squeezed {
				fmt.Fprintln(w, "*")
				squeezed = true
			}
			continue
		}
		squeezed = false
		prev = line
		d := hex.Dump(line) // one line, offset 0
		fmt.Fprintf(w, "%08x%s", off, d[8:])
	}
	fmt.Fprintf(w, "%08x\n", len(b))
}
