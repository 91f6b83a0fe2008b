// Package page defines mapkv's on-disk format: the page header, the meta
// page, branch and leaf elements, overflow values and the free list. It
// knows bytes and offsets and nothing else: no I/O, no tree logic.
//
// Every multi-byte integer is little-endian. The layout is written down in
// FORMAT.md beside this file; TestLayout pins every offset.
//
// A node is a run of 1+Overflow contiguous pages that starts with a Header.
// The header's checksum covers the whole run except the checksum field
// itself, so a node read from disk can be verified on its own.
package page

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// ID is the number of a page in the file; the page starts at ID*pageSize.
type ID uint64

// TxID is the number of a committed write transaction. The first commit of
// a new file is TxID 1; a database of only its initial metas is at TxID 0.
type TxID uint64

// Type says what a node holds.
type Type uint8

// Node types. Zero is never written, so a zeroed page never passes as a node.
const (
	TypeMeta      Type = 1 // one of the two meta pages (IDs 0 and 1)
	TypeBranch    Type = 2 // keys and child references
	TypeLeaf      Type = 3 // keys and values
	TypeOverflow  Type = 4 // the bytes of one large value
	TypeFreelist  Type = 5 // the free-list index: where each free-list chunk lives
	TypeFreeChunk Type = 6 // one chunk of the free-page bitmap
)

// String names the type.
func (t Type) String() string {
	switch t {
	case TypeMeta:
		return "meta"
	case TypeBranch:
		return "branch"
	case TypeLeaf:
		return "leaf"
	case TypeOverflow:
		return "overflow"
	case TypeFreelist:
		return "freelist"
	case TypeFreeChunk:
		return "freechunk"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Sizes and limits of the format.
const (
	HeaderSize        = 32       // bytes of Header at the start of every node
	LeafElementSize   = 12       // bytes of one leaf element
	BranchElementSize = 24       // bytes of one branch element
	RefSize           = 32       // bytes of an inline bucket or overflow reference
	MinPageSize       = 1 << 10  // smallest page size a file may use
	MaxPageSize       = 64 << 10 // largest page size a file may use
	MaxKeySize        = 32 << 10 // longest key
	MaxValueSize      = 1 << 30  // longest value
	MaxCount          = 1<<16 - 1
	MaxDepth          = 64 // deeper trees are treated as corrupt (loops)
)

// Leaf element flags.
const (
	FlagBucket   uint16 = 1 // the value is a BucketRef: the key names a nested bucket
	FlagOverflow uint16 = 2 // the value is an OverflowRef to a run of overflow pages
)

// Magic and Version identify a mapkv file; they sit in each meta page.
const (
	Magic   uint32 = 0x564b504d // "MPKV" read as little-endian bytes
	Version uint32 = 1
)

// Header field offsets.
const (
	offChecksum = 0
	offID       = 8
	offTxID     = 16
	offOverflow = 24
	offType     = 28
	offFlags    = 29
	offCount    = 30
)

// ErrFormat is returned (wrapped with detail) for bytes that do not form a
// valid node. The root package marks it as corruption.
var ErrFormat = errors.New("page: invalid format")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

var (
	le = binary.LittleEndian
	be = binary.BigEndian
)

// Header accessors. b must hold at least HeaderSize bytes.

// Checksum returns the stored checksum of the node starting at b.
func Checksum(b []byte) uint64 { return le.Uint64(b[offChecksum:]) }

// PageID returns the id the node claims to be written at.
func PageID(b []byte) ID { return ID(le.Uint64(b[offID:])) }

// Birth returns the txid that wrote the node.
func Birth(b []byte) TxID { return TxID(le.Uint64(b[offTxID:])) }

// Overflow returns how many pages follow the first page of the node.
func Overflow(b []byte) uint32 { return le.Uint32(b[offOverflow:]) }

// NodeType returns the node's type.
func NodeType(b []byte) Type { return Type(b[offType]) }

// Count returns the number of elements in a branch or leaf node.
func Count(b []byte) int { return int(le.Uint16(b[offCount:])) }

// PutHeader writes a node header (with a zero checksum; see Seal).
func PutHeader(b []byte, id ID, tx TxID, typ Type, overflow uint32, count int) {
	le.PutUint64(b[offChecksum:], 0)
	le.PutUint64(b[offID:], uint64(id))
	le.PutUint64(b[offTxID:], uint64(tx))
	le.PutUint32(b[offOverflow:], overflow)
	b[offType] = byte(typ)
	b[offFlags] = 0
	le.PutUint16(b[offCount:], uint16(count))
}

// Sum computes the checksum of a node: xxhash64 of every byte after the
// checksum field.
func Sum(node []byte) uint64 { return xxhash.Sum64(node[offID:]) }

// VerifyTrimmed is Verify for a node of n bytes stored without its zero
// tail: b is its first bytes, and every byte from len(b) to n is zero. It
// checks the node without making it (n may be far larger than b).
func VerifyTrimmed(b []byte, n int, id ID, want TxID) error {
	if n < HeaderSize || len(b) > n {
		return formatErr("page %d: a %d-byte node stored in %d bytes", id, n, len(b))
	}
	var head [HeaderSize]byte
	copy(head[:], b)
	if err := checkHead(head[:], id, want); err != nil {
		return err
	}
	d := xxhash.New()
	if len(b) > offID {
		d.Write(b[offID:])
	}
	var zeros [4096]byte
	for rest := n - max(len(b), offID); rest > 0; {
		k := min(rest, len(zeros))
		d.Write(zeros[:k])
		rest -= k
	}
	if s := d.Sum64(); s != Checksum(head[:]) {
		return formatErr("page %d: checksum mismatch (stored %016x, computed %016x)", id, Checksum(head[:]), s)
	}
	return nil
}

// Seal stores the node's checksum and returns it.
func Seal(node []byte) uint64 {
	s := Sum(node)
	le.PutUint64(node[offChecksum:], s)
	return s
}

// Verify checks that node (the whole run) carries the given id, a valid
// checksum, and, when want is nonzero, was written by transaction want.
func Verify(node []byte, id ID, want TxID) error {
	if len(node) < HeaderSize {
		return formatErr("page %d: short node", id)
	}
	if err := checkHead(node, id, want); err != nil {
		return err
	}
	if s := Sum(node); s != Checksum(node) {
		return formatErr("page %d: checksum mismatch (stored %016x, computed %016x)", id, Checksum(node), s)
	}
	return nil
}

// checkHead checks that the header in head carries id and, when want is
// nonzero, was written by transaction want (Verify, VerifyTrimmed).
func checkHead(head []byte, id ID, want TxID) error {
	if got := PageID(head); got != id {
		return formatErr("page %d: header says page %d", id, got)
	}
	if want != 0 && Birth(head) != want {
		return formatErr("page %d: written by tx %d, expected tx %d", id, Birth(head), want)
	}
	return nil
}

// Pages returns how many pages a node of n bytes needs.
func Pages(n, pageSize int) int { return (n + pageSize - 1) / pageSize }
