package main

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv/page"
)

func init() { register(newPagesCmd) }

// pageRow is one line of "mapkv pages": a node, a run of free pages or
// the file's tail.
type pageRow struct {
	ID       uint64 `json:"id"`
	Pages    uint64 `json:"pages"` // pages the row covers
	Type     string `json:"type"`  // meta, branch, leaf, overflow, freelist, freechunk, free, tail, or ? for garbage
	TxID     uint64 `json:"txid,omitempty"`
	Items    int    `json:"items,omitempty"` // elements of a branch or leaf, chunks of a free-list index, free pages of a chunk
	Checksum string `json:"checksum,omitempty"`
	Owner    string `json:"owner,omitempty"` // what reaches it: a bucket, the free list, a value
}

func newPagesCmd(g *globals) *cobra.Command {
	var asJSON bool
	var pageSize int
	cmd := &cobra.Command{
		Use:   "pages DB",
		Short: "List every page: what it is, its txid, checksum status and owner",
		Long: `Pages reads the file directly (it works on files too damaged to open) and
lists each page: meta, branch, leaf, overflow, freelist (the index of the
free-page bitmap), freechunk (a chunk of that bitmap) or free, with the
txid that wrote it, its element count, whether its checksum verifies and
what reaches it from the newest valid meta (a bucket path, the free list,
a value). A node spanning several pages is one line; so is a run of free
pages, and the file's tail beyond the high-water mark. A page that
nothing reaches and that is not free is "unreachable"; bytes that are no
node are "?".`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pf, err := openPageFile(args[0], pageSize)
			if err != nil {
				return err
			}
			defer pf.close()
			rows := pf.rows()
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			w := newTable(cmd.OutOrStdout())
			fmt.Fprintln(w, "ID\tPAGES\tTYPE\tTXID\tITEMS\tCHECKSUM\tOWNER")
			for _, r := range rows {
				txid, items := "-", "-"
				if r.TxID != 0 || r.Type == "meta" {
					txid = fmt.Sprint(r.TxID)
				}
				if r.Items != 0 || r.Type == "freelist" || r.Type == "freechunk" {
					items = fmt.Sprint(r.Items)
				}
				fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Pages, r.Type, txid, items, dash(r.Checksum), r.Owner)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&pageSize, "page-size", 0, "page size to assume when both meta pages are damaged")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// rows lists the file page by page.
func (pf *pageFile) rows() []pageRow {
	pf.walk()
	var rows []pageRow
	for slot := 0; slot < 2; slot++ {
		r := pageRow{ID: uint64(slot), Pages: 1, Type: "meta"}
		m := pf.metas[slot]
		switch {
		case m.err != nil:
			r.Checksum = "BAD"
			r.Owner = "invalid: " + message(m.err)
		case slot == pf.newest:
			r.TxID, r.Checksum, r.Owner = uint64(m.meta.TxID), "ok", "newest commit"
		default:
			r.TxID, r.Checksum, r.Owner = uint64(m.meta.TxID), "ok", "previous commit"
		}
		rows = append(rows, r)
	}
	hwm := pf.hwm()
	fi := 0 // next free run
	for id := uint64(2); id < hwm; {
		for fi < len(pf.free) && uint64(pf.free[fi].End()) <= id {
			fi++
		}
		if fi < len(pf.free) && uint64(pf.free[fi].Start) <= id {
			end := min(uint64(pf.free[fi].End()), hwm)
			rows = append(rows, pageRow{ID: id, Pages: end - id, Type: "free"})
			id = end
			continue
		}
		r := pf.row(page.ID(id), hwm)
		rows = append(rows, r)
		id += r.Pages
	}
	if fp := pf.filePages(); fp > hwm {
		rows = append(rows, pageRow{ID: hwm, Pages: fp - hwm, Type: "tail", Owner: "beyond the high-water mark"})
	}
	return rows
}

// row describes the node at id (not a free page).
func (pf *pageFile) row(id page.ID, hwm uint64) pageRow {
	r := pageRow{ID: uint64(id), Pages: 1}
	first, err := pf.readPage(id)
	if err != nil {
		r.Type, r.Owner = "?", message(err)
		return r
	}
	typ := page.NodeType(first)
	owner, reached := pf.owners[id]
	if page.PageID(first) != id || !knownType(typ) || typ == page.TypeMeta {
		r.Type = "?"
		if reached {
			r.Owner = owner + " (expected a node here)"
		} else {
			r.Owner = "unreachable"
		}
		return r
	}
	r.Type = typ.String()
	r.TxID = uint64(page.Birth(first))
	if n, err := nodePages(first, id, hwm); err == nil {
		r.Pages = n
	}
	switch typ {
	case page.TypeBranch, page.TypeLeaf:
		r.Items = page.Count(first)
	case page.TypeFreelist:
		r.Items = int(min(freeIndexChunks(first), 1<<30))
	case page.TypeFreeChunk:
		r.Items = freePagesMarked(first, pf.ps)
	}
	r.Checksum = pf.checksumStatus(id, first, hwm)
	if reached {
		r.Owner = owner
	} else {
		r.Owner = "unreachable"
	}
	return r
}

// knownType reports whether t is a node type of the format.
func knownType(t page.Type) bool {
	switch t {
	case page.TypeMeta, page.TypeBranch, page.TypeLeaf, page.TypeOverflow, page.TypeFreelist, page.TypeFreeChunk:
		return true
	}
	return false
}

// freeIndexChunks reads the chunk count of a free-list index node.
func freeIndexChunks(n []byte) uint64 {
	if len(n) < page.FreeBody+16 {
		return 0
	}
	return binary.LittleEndian.Uint64(n[page.FreeBody+8:])
}

// freePagesMarked counts the pages a free-list chunk node marks free.
func freePagesMarked(n []byte, pageSize int) int {
	end := page.FreeBody + 8 + int(page.ChunkBits(pageSize)/8)
	if len(n) < end {
		return 0
	}
	c := 0
	for _, b := range n[page.FreeBody+8 : end] {
		c += bits.OnesCount8(b)
	}
	return c
}
