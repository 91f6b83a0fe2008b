package page

import "bytes"

// Branch and leaf nodes.
//
// After the header come, in order:
//   - the common prefix of every key in the node: Cpl bytes (the header's
//     flags byte), padded with zeros to a multiple of 8;
//   - Count key prefixes, 4 bytes each: the bytes of each key that follow
//     the common prefix, the first 4 of them, zero-padded, read as a
//     big-endian integer (stored little-endian like every integer);
//   - Count fixed-size elements;
//   - the keys (and, in leaves, the values) the elements point at.
//
// A search compares integers in the dense prefix array and reads a full
// key only among equal prefixes, so it touches a few cache lines of the
// node instead of one line per probed element and one per probed key.
// Element positions are offsets from the start of the node. Every accessor
// checks that what it returns lies inside the node, so a damaged node
// yields an error, never a panic or a read outside the node.

// MaxCpl is the longest common prefix a node records.
const MaxCpl = 255

// Leaf element field offsets (12 bytes): pos u32, ksize u16, flags u16, vsize u32.
const (
	leafPos   = 0
	leafKSize = 4
	leafFlags = 6
	leafVSize = 8
)

// Branch element field offsets (24 bytes): child u64, child txid u64, pos u32, ksize u32.
const (
	branchChild = 0
	branchBirth = 8
	branchPos   = 16
	branchKSize = 20
)

func pad8(n int) int { return (n + 7) &^ 7 }

// Cpl returns the length of the common prefix of the node's keys.
func Cpl(node []byte) int { return int(node[offFlags]) }

// CommonPrefix returns the common prefix of the node's keys.
func CommonPrefix(node []byte) []byte { return node[HeaderSize : HeaderSize+Cpl(node)] }

func prefixBase(node []byte) int { return HeaderSize + pad8(Cpl(node)) }

func elemBase(node []byte) int { return pad8(prefixBase(node) + 4*Count(node)) }

// ElemBase returns where the element array of a branch or leaf starts,
// for the accessors that take it (LeafElemAt, BranchChildAt) instead of
// computing it from the header on every call.
func ElemBase(node []byte) int { return elemBase(node) }

// CheckNode verifies the parts of a branch or leaf node that accessors rely
// on: its type, and that the prefix and element arrays fit.
func CheckNode(node []byte, typ Type) error {
	if len(node) < HeaderSize {
		return formatErr("short node")
	}
	if t := NodeType(node); t != typ {
		return formatErr("page %d: is %s, expected %s", PageID(node), t, typ)
	}
	esz := LeafElementSize
	if typ == TypeBranch {
		esz = BranchElementSize
	}
	n := Count(node)
	if n == 0 {
		return formatErr("page %d: empty %s", PageID(node), typ)
	}
	if elemBase(node)+n*esz > len(node) {
		return formatErr("page %d: %d elements overflow the node", PageID(node), n)
	}
	return nil
}

// Searchable reports whether node is a branch or a leaf that passes
// CheckNode for its type: what CheckNode(node, NodeType(node)) checks, as
// a bool, for the lookup path.
func Searchable(node []byte) bool {
	if len(node) < HeaderSize {
		return false
	}
	esz := LeafElementSize
	switch NodeType(node) {
	case TypeLeaf:
	case TypeBranch:
		esz = BranchElementSize
	default:
		return false
	}
	n := Count(node)
	return n > 0 && elemBase(node)+n*esz <= len(node)
}

// KeyPrefix returns the prefix integer of key after skipping cpl bytes
// (0 if the key is not that long).
func KeyPrefix(key []byte, cpl int) uint32 {
	if len(key) < cpl {
		return 0
	}
	k := key[cpl:]
	if len(k) >= 4 {
		return be.Uint32(k)
	}
	var b [4]byte
	copy(b[:], k)
	return be.Uint32(b[:])
}

func prefixAt(node []byte, base, i int) uint32 { return le.Uint32(node[base+4*i:]) }

// LeafKey returns the key of leaf element i. ok is false when the element
// does not fit the node. The node must have passed CheckNode.
func LeafKey(node []byte, i int) (key []byte, ok bool) {
	e := elemBase(node) + i*LeafElementSize
	pos := int(le.Uint32(node[e+leafPos:]))
	ks := int(le.Uint16(node[e+leafKSize:]))
	if pos < HeaderSize || pos+ks > len(node) {
		return nil, false
	}
	return node[pos : pos+ks : pos+ks], true
}

// LeafElem returns the flags, key and value of leaf element i. ok is false
// when the element does not fit the node. The node must have passed
// CheckNode and i must be below Count.
func LeafElem(node []byte, i int) (flags uint16, key, value []byte, ok bool) {
	e := elemBase(node) + i*LeafElementSize
	pos := int(le.Uint32(node[e+leafPos:]))
	ks := int(le.Uint16(node[e+leafKSize:]))
	vs := int(le.Uint32(node[e+leafVSize:]))
	flags = le.Uint16(node[e+leafFlags:])
	if pos < HeaderSize || vs > len(node) || pos+ks+vs > len(node) {
		return 0, nil, nil, false
	}
	if flags&(FlagBucket|FlagOverflow) != 0 && vs != RefSize {
		return 0, nil, nil, false
	}
	kend := pos + ks
	vend := kend + vs
	return flags, node[pos:kend:kend], node[kend:vend:vend], true
}

// LeafElemAt is LeafElem for a caller that keeps eb = ElemBase(node).
func LeafElemAt(node []byte, eb, i int) (flags uint16, key, value []byte, ok bool) {
	pos, kend, vend, flags := LeafElemSpan(node, eb+i*LeafElementSize)
	if pos < HeaderSize || vend > uint64(len(node)) || flags&(FlagBucket|FlagOverflow) != 0 && vend-kend != RefSize {
		return 0, nil, nil, false
	}
	return flags, node[pos:kend:kend], node[kend:vend:vend], true
}

// LeafElemSpan decodes the leaf element at byte e of node: the key is
// node[pos:kend], the value node[kend:vend]. It checks nothing (small
// enough for the compiler to inline into a scan's step): the caller
// checks pos >= HeaderSize and vend <= len(node), and for a flagged
// element that its value is RefSize bytes, as LeafElemAt does.
func LeafElemSpan(node []byte, e int) (pos, kend, vend uint64, flags uint16) {
	// One bounds check for the element, then none: a scan of a leaf in
	// the CPU's caches took 8.8 ns a key with a check per field, 7.3
	// with this.
	el := (*[LeafElementSize]byte)(node[e : e+LeafElementSize])
	// pos, ksize and flags in one word (leafPos, leafKSize, leafFlags);
	// 64-bit sums of 16- and 32-bit fields cannot wrap, on any platform.
	w := le.Uint64(el[:8])
	pos = w & 0xffffffff
	kend = pos + w>>32&0xffff
	vend = kend + uint64(le.Uint32(el[leafVSize:]))
	return pos, kend, vend, uint16(w >> 48)
}

// BranchKey returns the key of branch element i (the first key of that
// child's subtree). The node must have passed CheckNode.
func BranchKey(node []byte, i int) (key []byte, ok bool) {
	e := elemBase(node) + i*BranchElementSize
	pos := int(le.Uint32(node[e+branchPos:]))
	ks := int(le.Uint32(node[e+branchKSize:]))
	if pos < HeaderSize || ks > len(node) || pos+ks > len(node) {
		return nil, false
	}
	return node[pos : pos+ks : pos+ks], true
}

// BranchChild returns the page id and birth txid of branch element i's child.
func BranchChild(node []byte, i int) (ID, TxID) { return BranchChildAt(node, elemBase(node), i) }

// BranchChildAt is BranchChild for a caller that keeps eb = ElemBase(node).
func BranchChildAt(node []byte, eb, i int) (ID, TxID) {
	e := eb + i*BranchElementSize
	elem := node[e : e+16]
	return ID(le.Uint64(elem[branchChild:])), TxID(le.Uint64(elem[branchBirth:]))
}

// comparePrefix compares key with the node's common prefix of cpl > 0
// bytes: -1 if key sorts before every key of the node (it is below the
// prefix or a proper prefix of it), +1 if after all of them, 0 if key
// starts with it.
func comparePrefix(node []byte, key []byte, cpl int) int {
	if cpl <= 8 && len(key) >= 8 {
		// One comparison of big-endian words: the node stores the
		// prefix zero-padded to 8 bytes, and the key has 8.
		sh := uint(64 - 8*cpl)
		k := be.Uint64(key) >> sh
		p := be.Uint64(node[HeaderSize:]) >> sh
		if k < p {
			return -1
		}
		if k > p {
			return 1
		}
		return 0
	}
	cp := node[HeaderSize : HeaderSize+cpl]
	if len(key) < cpl {
		if string(key) <= string(cp[:len(key)]) {
			return -1 // key is a prefix of (or below) every key
		}
		return 1
	}
	return bytes.Compare(key[:cpl], cp)
}

// lowerBound returns the first index in [0, n] whose prefix in the array
// pa (4 bytes each, n >= 1 of them) is >= pk. The loop has no
// data-dependent branch, so a search costs no mispredictions (a binary
// search's branches go either way at random).
func lowerBound(pa []byte, n int, pk uint32) int {
	lo := 0
	for n > 1 {
		half := n >> 1
		j := 4 * (lo + half)
		v := le.Uint32(pa[j : j+4])
		// lo += half if v < pk: then v-pk wraps and its high 32 bits
		// are ones, a mask that keeps half (< 1<<16); otherwise zeros.
		lo += half & int((uint64(v)-uint64(pk))>>32)
		n -= half
	}
	j := 4 * lo
	v := le.Uint32(pa[j : j+4])
	return lo + int((uint64(v)-uint64(pk))>>63)
}

// searchRange narrows a search for key in a node of n keys with the
// common prefix and the prefix array. It returns the range [lo, hi) of
// elements whose prefix equals key's: lo = hi = 0 when key sorts before
// every key of the node, lo = hi = n when it sorts after all of them.
// The node must have passed CheckNode (so n >= 1 and both arrays fit).
func searchRange(node []byte, key []byte) (lo, hi int) {
	n := Count(node)
	cpl := Cpl(node)
	if cpl > 0 {
		switch comparePrefix(node, key, cpl) {
		case -1:
			return 0, 0
		case 1:
			return n, n
		}
	}
	pk := KeyPrefix(key, cpl)
	base := HeaderSize + pad8(cpl)
	pa := node[base : base+4*n]
	lo = lowerBound(pa, n, pk)
	hi = lo
	for hi < n && le.Uint32(pa[4*hi:]) == pk {
		hi++
		if hi-lo > 8 { // many equal prefixes: finish with a binary search
			h := n
			for hi < h {
				m := int(uint(hi+h) >> 1)
				if le.Uint32(pa[4*m:]) == pk {
					hi = m + 1
				} else {
					h = m
				}
			}
			break
		}
	}
	return lo, hi
}

// SearchLeaf returns the index of the first element whose key is >= key,
// and whether it is equal. ok is false if the node is damaged. The node
// must have passed CheckNode.
func SearchLeaf(node []byte, key []byte) (i int, eq, ok bool) {
	lo, hi := searchRange(node, key)
	for lo < hi { // among equal prefixes: first key >= key
		m := int(uint(lo+hi) >> 1)
		k, ok := LeafKey(node, m)
		if !ok {
			return 0, false, false
		}
		c := bytes.Compare(k, key)
		if c == 0 {
			return m, true, true
		}
		if c < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, false, true
}

// LeafGet looks key up in a leaf: it returns the flags and value of the
// element whose key equals key, found=false if there is none, and
// ok=false if the node is damaged. It is SearchLeaf and LeafElem in one
// for Get. The node must have passed CheckNode.
func LeafGet(node []byte, key []byte) (flags uint16, value []byte, found, ok bool) {
	lo, hi := searchRange(node, key)
	eb := elemBase(node)
	for lo < hi { // among equal prefixes
		m := int(uint(lo+hi) >> 1)
		e := eb + m*LeafElementSize
		elem := node[e : e+LeafElementSize]
		pos := int(le.Uint32(elem[leafPos:]))
		ks := int(le.Uint16(elem[leafKSize:]))
		if pos < HeaderSize || pos+ks > len(node) {
			return 0, nil, false, false
		}
		kend := pos + ks
		c := bytes.Compare(node[pos:kend], key)
		if c == 0 {
			vs := int(le.Uint32(elem[leafVSize:]))
			flags = le.Uint16(elem[leafFlags:])
			if vs > len(node)-kend {
				return 0, nil, false, false
			}
			if flags&(FlagBucket|FlagOverflow) != 0 && vs != RefSize {
				return 0, nil, false, false
			}
			return flags, node[kend : kend+vs : kend+vs], true, true
		}
		if c < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return 0, nil, false, true
}

// SearchBranch returns the index of the child whose range holds key: the
// last element whose key is <= key, or 0. ok is false if the node is
// damaged. The node must have passed CheckNode.
func SearchBranch(node []byte, key []byte) (i int, ok bool) {
	lo, hi := searchRange(node, key)
	for lo < hi { // among equal prefixes: first key > key
		m := int(uint(lo+hi) >> 1)
		k, ok := BranchKey(node, m)
		if !ok {
			return 0, false
		}
		if bytes.Compare(k, key) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, true
	}
	return lo - 1, true
}

// LeafEntrySize is the bytes a leaf entry takes in a node.
func LeafEntrySize(key, value []byte) int { return 4 + LeafElementSize + len(key) + len(value) }

// BranchEntrySize is the bytes a branch entry takes in a node.
func BranchEntrySize(key []byte) int { return 4 + BranchElementSize + len(key) }

// PrefixArea returns the bytes a common prefix of n bytes takes, with the
// padding that keeps the element array 8-byte aligned.
func PrefixArea(n int) int { return pad8(n) + 8 }

// CommonLen returns the length of the common prefix of a and b, at most
// max. For sorted keys, that of the first and last is that of all.
func CommonLen(a, b []byte, max int) int {
	n := min(len(a), len(b), max)
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// nodeWriter lays out the arrays of a node being filled in place.
type nodeWriter struct {
	node []byte
	n    int
	cpl  int
	pb   int // prefix array
	eb   int // element array
	data int // where the next key goes
}

func newNodeWriter(node []byte, count, esz int, cp []byte) nodeWriter {
	cpl := min(len(cp), MaxCpl)
	node[offFlags] = byte(cpl)
	copy(node[HeaderSize:], cp[:cpl])
	clear(node[HeaderSize+cpl : HeaderSize+pad8(cpl)])
	pb := HeaderSize + pad8(cpl)
	eb := pad8(pb + 4*count)
	clear(node[pb+4*count : eb])
	return nodeWriter{node: node, cpl: cpl, pb: pb, eb: eb, data: eb + count*esz}
}

// LeafWriter fills a leaf node in place. Elements must be added in key order.
type LeafWriter struct{ nodeWriter }

// NewLeafWriter starts a leaf of count elements in node, whose header has
// been written. cp is the common prefix of the keys to come (nil: none).
func NewLeafWriter(node []byte, count int, cp ...[]byte) LeafWriter {
	var p []byte
	if len(cp) > 0 {
		p = cp[0]
	}
	return LeafWriter{newNodeWriter(node, count, LeafElementSize, p)}
}

// Add appends an element. The caller has sized the node to fit.
func (w *LeafWriter) Add(flags uint16, key, value []byte) {
	le.PutUint32(w.node[w.pb+4*w.n:], KeyPrefix(key, w.cpl))
	e := w.eb + w.n*LeafElementSize
	le.PutUint32(w.node[e+leafPos:], uint32(w.data))
	le.PutUint16(w.node[e+leafKSize:], uint16(len(key)))
	le.PutUint16(w.node[e+leafFlags:], flags)
	le.PutUint32(w.node[e+leafVSize:], uint32(len(value)))
	w.data += copy(w.node[w.data:], key)
	w.data += copy(w.node[w.data:], value)
	w.n++
}

// Used returns the bytes written so far, header included.
func (w *LeafWriter) Used() int { return w.data }

// CopyFrom appends elements [i, j) of leaf src: the bytes Add would write
// for them, moved a run at a time (their prefixes, their elements with
// the key positions moved by one amount, and their keys and values in one
// copy). src must have passed LeafPacked, and its common prefix must be
// the writer's.
func (w *LeafWriter) CopyFrom(src []byte, i, j int) {
	if i >= j {
		return
	}
	w.copyRun(src, i, j, LeafElementSize, leafPos, leafDataEnd(src, j-1))
}

// copyRun appends elements [i, j) of src, whose elements take esz bytes
// with the position of their data at posOff and whose data end at end:
// their prefixes, their elements with the positions moved by one amount,
// and their data in one copy (LeafWriter.CopyFrom, BranchWriter.CopyFrom).
func (w *nodeWriter) copyRun(src []byte, i, j, esz, posOff, end int) {
	spb := prefixBase(src)
	copy(w.node[w.pb+4*w.n:], src[spb+4*i:spb+4*j])
	seb := elemBase(src)
	first := int(le.Uint32(src[seb+i*esz+posOff:]))
	e := w.eb + w.n*esz
	es := copy(w.node[e:], src[seb+i*esz:seb+j*esz])
	shift := uint32(w.data - first) // modulo 2^32: positions may move down
	for p := e; p < e+es; p += esz {
		le.PutUint32(w.node[p+posOff:], le.Uint32(w.node[p+posOff:])+shift)
	}
	w.data += copy(w.node[w.data:], src[first:end])
	w.n += j - i
}

// LeafPacked reports whether leaf node, which passed CheckNode, is laid
// out as LeafWriter lays a leaf out, its keys in order: each element's key
// and value follow the previous one's, from the end of the element array
// on, inside the node; each key begins with the common prefix and its
// prefix is in the array; flagged values are references; every key sorts
// after the one before. Then runs of its elements may be copied whole
// (LeafWriter.CopyFrom) and the copy is the node Add would build. end is
// where the last value ends.
func LeafPacked(node []byte) (end int, ok bool) {
	cnt := Count(node)
	cp := CommonPrefix(node)
	pb := prefixBase(node)
	eb := elemBase(node)
	at := eb + cnt*LeafElementSize
	var prev []byte
	var pprev uint32
	for i := 0; i < cnt; i++ {
		e := eb + i*LeafElementSize
		pos := int(le.Uint32(node[e+leafPos:]))
		ks := int(le.Uint16(node[e+leafKSize:]))
		vs := int(le.Uint32(node[e+leafVSize:]))
		if pos != at || vs > len(node) || at+ks+vs > len(node) {
			return 0, false
		}
		if le.Uint16(node[e+leafFlags:])&(FlagBucket|FlagOverflow) != 0 && vs != RefSize {
			return 0, false
		}
		key := node[pos : pos+ks]
		p, ok := packedKey(node, pb, i, key, cp, prev, pprev)
		if !ok {
			return 0, false
		}
		prev, pprev = key, p
		at += ks + vs
	}
	return at, true
}

// LeafEnd returns where the last element's value ends in leaf node,
// which passed CheckNode: for a node known to be laid out as LeafWriter
// lays one out (which LeafPacked checks), the end LeafPacked returns,
// without the walk. ok is false if that end does not lie inside the node.
func LeafEnd(node []byte) (end int, ok bool) {
	if Count(node) == 0 {
		return elemBase(node), true
	}
	end = leafDataEnd(node, Count(node)-1)
	return end, end >= 0 && end <= len(node)
}

// BranchEnd is LeafEnd for a branch (see BranchPacked): where the last
// element's key ends.
func BranchEnd(node []byte) (end int, ok bool) {
	if Count(node) == 0 {
		return elemBase(node), true
	}
	end = branchDataEnd(node, Count(node)-1)
	return end, end >= 0 && end <= len(node)
}

// leafDataEnd returns where element i's value ends in leaf node, as its
// element says (the element must lie inside the node: CheckNode).
func leafDataEnd(node []byte, i int) int {
	e := elemBase(node) + i*LeafElementSize
	return int(le.Uint32(node[e+leafPos:])) + int(le.Uint16(node[e+leafKSize:])) + int(le.Uint32(node[e+leafVSize:]))
}

// branchDataEnd returns where element i's key ends in branch node, as its
// element says (the element must lie inside the node: CheckNode).
func branchDataEnd(node []byte, i int) int {
	e := elemBase(node) + i*BranchElementSize
	return int(le.Uint32(node[e+branchPos:])) + int(le.Uint32(node[e+branchKSize:]))
}

// packedKey checks key, that of element i of a node LeafPacked or
// BranchPacked is walking (prefix array at pb, common prefix cp): it
// begins with cp, the array holds its prefix, and it sorts after prev,
// the key before it (whose prefix is pprev). It returns key's prefix.
func packedKey(node []byte, pb, i int, key, cp, prev []byte, pprev uint32) (uint32, bool) {
	cpl := len(cp)
	if len(key) < cpl || !bytes.Equal(key[:cpl], cp) {
		return 0, false
	}
	p := KeyPrefix(key, cpl)
	if p != prefixAt(node, pb, i) {
		return 0, false
	}
	if i > 0 && (p < pprev || p == pprev && bytes.Compare(prev, key) >= 0) {
		return 0, false
	}
	return p, true
}

// BranchWriter fills a branch node in place, in key order.
type BranchWriter struct{ nodeWriter }

// NewBranchWriter starts a branch of count elements in node, whose header
// has been written. cp is the common prefix of the keys to come (nil: none).
func NewBranchWriter(node []byte, count int, cp ...[]byte) BranchWriter {
	var p []byte
	if len(cp) > 0 {
		p = cp[0]
	}
	return BranchWriter{newNodeWriter(node, count, BranchElementSize, p)}
}

// Add appends a child reference whose subtree starts with key.
func (w *BranchWriter) Add(key []byte, child ID, birth TxID) {
	le.PutUint32(w.node[w.pb+4*w.n:], KeyPrefix(key, w.cpl))
	e := w.eb + w.n*BranchElementSize
	le.PutUint64(w.node[e+branchChild:], uint64(child))
	le.PutUint64(w.node[e+branchBirth:], uint64(birth))
	le.PutUint32(w.node[e+branchPos:], uint32(w.data))
	le.PutUint32(w.node[e+branchKSize:], uint32(len(key)))
	w.data += copy(w.node[w.data:], key)
	w.n++
}

// Used returns the bytes written so far, header included.
func (w *BranchWriter) Used() int { return w.data }

// CopyFrom appends elements [i, j) of branch src: the bytes Add would
// write for them, moved a run at a time, as LeafWriter.CopyFrom does. src
// must have passed BranchPacked, and its common prefix must be the
// writer's.
func (w *BranchWriter) CopyFrom(src []byte, i, j int) {
	if i >= j {
		return
	}
	w.copyRun(src, i, j, BranchElementSize, branchPos, branchDataEnd(src, j-1))
}

// BranchPacked reports whether branch node, which passed CheckNode, is
// laid out as BranchWriter lays a branch out, its keys in order (see
// LeafPacked): then runs of its elements may be copied whole
// (BranchWriter.CopyFrom) and the copy is the node Add would build. end
// is where the last key ends.
func BranchPacked(node []byte) (end int, ok bool) {
	cnt := Count(node)
	cp := CommonPrefix(node)
	pb := prefixBase(node)
	eb := elemBase(node)
	at := eb + cnt*BranchElementSize
	if at > len(node) {
		return 0, false
	}
	var prev []byte
	var pprev uint32
	for i := 0; i < cnt; i++ {
		e := eb + i*BranchElementSize
		pos := int(le.Uint32(node[e+branchPos:]))
		ks := int(le.Uint32(node[e+branchKSize:]))
		if pos != at || ks > len(node) || at+ks > len(node) {
			return 0, false
		}
		key := node[pos : pos+ks]
		p, ok := packedKey(node, pb, i, key, cp, prev, pprev)
		if !ok {
			return 0, false
		}
		prev, pprev = key, p
		at += ks
	}
	return at, true
}

// Ref is the 32-byte value stored under a leaf element flagged FlagBucket
// or FlagOverflow. For a nested bucket: its tree's root node (0 when the
// bucket has no keys), the txid that wrote that node, the bucket's
// sequence, and how many buckets are nested directly in it. For an
// overflow value: its first page, the txid that wrote it, the value's
// length in bytes, and 0.
type Ref struct {
	Root   ID
	Birth  TxID
	Seq    uint64
	Nested uint64
}

// DecodeRef reads a Ref from a RefSize-byte value.
func DecodeRef(v []byte) (Ref, bool) {
	if len(v) != RefSize {
		return Ref{}, false
	}
	return Ref{ID(le.Uint64(v)), TxID(le.Uint64(v[8:])), le.Uint64(v[16:]), le.Uint64(v[24:])}, true
}

// Encode writes r into b (RefSize bytes) and returns b[:RefSize].
func (r Ref) Encode(b []byte) []byte {
	b = b[:RefSize]
	le.PutUint64(b, uint64(r.Root))
	le.PutUint64(b[8:], uint64(r.Birth))
	le.PutUint64(b[16:], r.Seq)
	le.PutUint64(b[24:], r.Nested)
	return b
}

// CheckPrefixes verifies the search arrays of a node (which has passed
// CheckNode) against its keys: every key starts with the common prefix and
// its stored prefix is the one computed from the key. It returns the index
// of the first element that disagrees, or -1.
func CheckPrefixes(node []byte) int {
	cpl := Cpl(node)
	cp := node[HeaderSize : HeaderSize+cpl]
	base := prefixBase(node)
	branch := NodeType(node) == TypeBranch
	for i := 0; i < Count(node); i++ {
		var k []byte
		var ok bool
		if branch {
			k, ok = BranchKey(node, i)
		} else {
			k, ok = LeafKey(node, i)
		}
		if !ok || len(k) < cpl || string(k[:cpl]) != string(cp) || prefixAt(node, base, i) != KeyPrefix(k, cpl) {
			return i
		}
	}
	return -1
}
