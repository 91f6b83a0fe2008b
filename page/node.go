package page

// Branch and leaf nodes.
//
// After the header comes an array of Count fixed-size elements, then the
// keys (and, in leaves, the values) they point at. Element positions are
// offsets from the start of the node. Every accessor checks that what it
// returns lies inside the node, so a damaged node yields an error, never a
// panic or a read outside the node.

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

// CheckNode verifies the parts of a branch or leaf node that accessors rely
// on: its type, and that the element array fits.
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
	if HeaderSize+n*esz > len(node) {
		return formatErr("page %d: %d elements overflow the node", PageID(node), n)
	}
	return nil
}

// LeafKey returns the key of leaf element i. ok is false when the element
// does not fit the node. The node must have passed CheckNode.
func LeafKey(node []byte, i int) (key []byte, ok bool) {
	e := HeaderSize + i*LeafElementSize
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
	e := HeaderSize + i*LeafElementSize
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

// BranchKey returns the key of branch element i (the first key of that
// child's subtree). The node must have passed CheckNode.
func BranchKey(node []byte, i int) (key []byte, ok bool) {
	e := HeaderSize + i*BranchElementSize
	pos := int(le.Uint32(node[e+branchPos:]))
	ks := int(le.Uint32(node[e+branchKSize:]))
	if pos < HeaderSize || ks > len(node) || pos+ks > len(node) {
		return nil, false
	}
	return node[pos : pos+ks : pos+ks], true
}

// BranchChild returns the page id and birth txid of branch element i's child.
func BranchChild(node []byte, i int) (ID, TxID) {
	e := HeaderSize + i*BranchElementSize
	return ID(le.Uint64(node[e+branchChild:])), TxID(le.Uint64(node[e+branchBirth:]))
}

// LeafEntrySize is the bytes a leaf entry takes in a node.
func LeafEntrySize(key, value []byte) int { return LeafElementSize + len(key) + len(value) }

// BranchEntrySize is the bytes a branch entry takes in a node.
func BranchEntrySize(key []byte) int { return BranchElementSize + len(key) }

// LeafWriter fills a leaf node in place. Elements must be added in key order.
type LeafWriter struct {
	node []byte
	n    int
	data int // where the next key goes
	cap  int // number of elements the array was sized for
}

// NewLeafWriter starts a leaf of count elements in node.
func NewLeafWriter(node []byte, count int) LeafWriter {
	return LeafWriter{node: node, cap: count, data: HeaderSize + count*LeafElementSize}
}

// Add appends an element. The caller has sized the node to fit.
func (w *LeafWriter) Add(flags uint16, key, value []byte) {
	e := HeaderSize + w.n*LeafElementSize
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

// BranchWriter fills a branch node in place, in key order.
type BranchWriter struct {
	node []byte
	n    int
	data int
}

// NewBranchWriter starts a branch of count elements in node.
func NewBranchWriter(node []byte, count int) BranchWriter {
	return BranchWriter{node: node, data: HeaderSize + count*BranchElementSize}
}

// Add appends a child reference whose subtree starts with key.
func (w *BranchWriter) Add(key []byte, child ID, birth TxID) {
	e := HeaderSize + w.n*BranchElementSize
	le.PutUint64(w.node[e+branchChild:], uint64(child))
	le.PutUint64(w.node[e+branchBirth:], uint64(birth))
	le.PutUint32(w.node[e+branchPos:], uint32(w.data))
	le.PutUint32(w.node[e+branchKSize:], uint32(len(key)))
	w.data += copy(w.node[w.data:], key)
	w.n++
}

// Used returns the bytes written so far, header included.
func (w *BranchWriter) Used() int { return w.data }

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
