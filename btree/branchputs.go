package btree

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/mapkv/mapkv/page"
)

// Branches told as puts.
//
// A commit of a few keys rewrites every branch on the path to the leaves
// it changes, each to replace one child reference (or two, when a leaf
// splits), and the branches near the root are rewritten by every commit.
// A PutsSealer is told how such a branch differs from the one it replaces,
// as puts of child references: a put's Value is the child's page id and
// birth txid (branchRefSize bytes, little endian) under the key its
// subtree starts with, replacing the reference under an equal key or
// going between two; a delete (Delete set, or an empty Value as a log
// stores it) removes the reference under its key. A log can then store a
// few dozen bytes for the branch instead of its 3-4 KB image, and a
// replay builds it again with Rebuild.

// branchRefSize is the size of a branch put's Value.
const branchRefSize = 16

// maxBranchPuts bounds the puts a branch is told with: past it, the
// branch goes as an image (a log would not save much).
const maxBranchPuts = 32

// branchPuts returns the puts that turn branch old (checked by applyKids
// or page.BranchPacked: its keys are in order) into the branch whose
// children are kids in place of old's children lo..hi-1, built as one page
// using used bytes. ok is false when there are too many, or their payload
// would be no shorter than the node.
//
// Children that did not change are kids copied from old, in order, and
// not fresh; the rest are fresh (or, after a merge, gone), so the walk
// compares keys only around changed children.
func (w *Writer) branchPuts(old []byte, lo, hi int, kids []child, used int) (_ []Mutation, ok bool) {
	ops, from := w.ops[:0], w.opKids[:0] // from: the kid each put comes from
	defer func() { w.ops, w.opKids = ops[:0], from[:0] }()
	eb := page.ElemBase(old)
	size := 0
	i, k := lo, 0
	for i < hi || k < len(kids) {
		var key []byte
		if i < hi {
			var ok bool
			if key, ok = page.BranchKey(old, i); !ok {
				return nil, false
			}
			if k < len(kids) && !kids[k].fresh && same(kids[k].key, key) {
				id, birth := page.BranchChildAt(old, eb, i)
				if kids[k].id == id && kids[k].birth == birth {
					i, k = i+1, k+1
					continue
				}
			}
		}
		c := 1 // < 0: old's child i goes; 0: kids[k] replaces it; > 0: kids[k] is new
		switch {
		case k == len(kids):
			c = -1
		case i < hi:
			c = bytes.Compare(key, kids[k].key)
		}
		if c < 0 {
			ops = append(ops, Mutation{Key: key, Delete: true})
			i++
		} else {
			ops = append(ops, Mutation{Key: kids[k].key})
			from = append(from, k)
			if c == 0 {
				i++
			}
			k++
		}
		size += len(ops[len(ops)-1].Key) + branchRefSize + 2
		if len(ops) > maxBranchPuts || size >= used/2 {
			return nil, false
		}
	}
	if len(ops) == 0 {
		return nil, false // the same children: not a node this path builds
	}
	// The values, now that no append moves ops: one buffer, in the
	// order of the puts.
	vals := w.opVals[:0]
	for _, k := range from {
		vals = binary.LittleEndian.AppendUint64(vals, uint64(kids[k].id))
		vals = binary.LittleEndian.AppendUint64(vals, uint64(kids[k].birth))
	}
	w.opVals = vals
	for j := range ops {
		if !ops[j].Delete {
			ops[j].Value, vals = vals[:branchRefSize:branchRefSize], vals[branchRefSize:]
		}
	}
	return ops, true
}

// same reports whether a and b are the same bytes in memory (a child
// copied from the old node, not an equal key from elsewhere).
func same(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// Rebuild builds in dst (one page, the size of old) the node that a
// PutsSealer was told was made from node old by muts (SealPuts), under id
// and txid, unsealed, and returns the bytes it uses as layout counts them
// (SealPuts' used): a leaf as RebuildInPlace does, a branch as
// RebuildBranch does, by old's type. It fails, leaving dst unspecified,
// if old is not a well-formed node of either type or the puts do not
// apply (a log's replay rebuilds its nodes with it, then checks their
// checksums).
func Rebuild(dst, old []byte, id page.ID, txid page.TxID, muts []Mutation) (int, error) {
	if len(old) >= page.HeaderSize && page.NodeType(old) == page.TypeBranch {
		return RebuildBranch(dst, old, id, txid, muts)
	}
	return RebuildInPlace(dst, old, id, txid, muts)
}

// RebuildBranch builds in dst (one page, the size of old) the branch that
// the puts muts of child references (see branchPuts: sorted by key, each
// a put of a branchRefSize-byte Value or a delete) make from branch old,
// under id and txid, unsealed, laid out as packBranches lays one node out,
// and returns the bytes it uses as layout counts them. It fails if old is
// not a well-formed branch with its keys in order, if a put's Value is
// not a child reference, if a delete names no child of old, or if the
// result is empty or does not fit one page.
func RebuildBranch(dst, old []byte, id page.ID, txid page.TxID, muts []Mutation) (int, error) {
	fail := func(format string, args ...any) (int, error) {
		return 0, fmt.Errorf("btree: rebuild branch %d: "+format, append([]any{id}, args...)...)
	}
	if len(dst) != len(old) {
		return fail("%d-byte page for a %d-byte node", len(dst), len(old))
	}
	if err := page.CheckNode(old, page.TypeBranch); err != nil {
		return fail("the old node: %w", err)
	}
	olds, err := appendBranch(make([]child, 0, page.Count(old)), old)
	if err != nil {
		return fail("the old node: %w", err)
	}
	for j := 1; j < len(muts); j++ {
		if bytes.Compare(muts[j-1].Key, muts[j].Key) >= 0 {
			return fail("puts not in ascending key order")
		}
	}
	kids := make([]child, 0, len(olds)+len(muts))
	i, j := 0, 0
	for i < len(olds) || j < len(muts) {
		c := 1 // < 0: olds[i] stays; 0: muts[j] replaces or deletes it; > 0: muts[j] is new
		switch {
		case j == len(muts):
			c = -1
		case i < len(olds):
			c = bytes.Compare(olds[i].key, muts[j].Key)
		}
		if c < 0 {
			kids = append(kids, olds[i])
			i++
			continue
		}
		m := &muts[j]
		j++
		if c == 0 {
			i++
		}
		if m.Delete || len(m.Value) == 0 {
			if c != 0 {
				return fail("a delete of %q names no child", m.Key)
			}
			continue
		}
		if len(m.Value) != branchRefSize {
			return fail("a put of %d bytes, not a child reference", len(m.Value))
		}
		kids = append(kids, child{key: m.Key, id: page.ID(binary.LittleEndian.Uint64(m.Value)), birth: page.TxID(binary.LittleEndian.Uint64(m.Value[8:]))})
	}
	if len(kids) == 0 {
		return fail("no child left")
	}
	sizes := make([]int, len(kids))
	for k, c := range kids {
		sizes[k] = page.BranchEntrySize(c.key)
	}
	used, pages, cp := layoutOf(len(dst), sizes, kids[0].key, kids[len(kids)-1].key)
	if pages != 1 || len(kids) > page.MaxCount {
		return fail("%d children do not fit one page", len(kids))
	}
	buildBranch(dst, id, txid, 1, kids, cp)
	return used, nil
}
