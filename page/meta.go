package page

// Meta is the decoded content of a meta page. Pages 0 and 1 hold the two
// most recent commits; a commit writes the slot of its TxID modulo 2, so
// the other slot keeps the previous commit intact.
type Meta struct {
	PageSize uint32
	Flags    uint32
	Root     Ref  // the root bucket: its tree, sequence and nested-bucket count
	Freelist ID   // first page of the free-list node; 0 = none
	FreeTx   TxID // txid that wrote the free-list node
	PgCount  uint64
	TxID     TxID
	// CommitPages and CommitHash are the commit record: how many nodes
	// this transaction wrote and a hash over their (id, checksum) pairs.
	// Open verifies them unless MetaSynced is set.
	CommitPages uint64
	CommitHash  uint64
}

// Meta flags.
const (
	// MetaSynced says the data pages were flushed before this meta was
	// written (the two-sync commit): Open need not verify the commit record.
	MetaSynced uint32 = 1
	// MetaFreeDeferred says the commit did not write the free list (a
	// small commit made durable by the write-ahead log): the meta names
	// none (Freelist and FreeTx are 0), and every page below PgCount that
	// the meta cannot reach is free. Open rebuilds the list by walking the
	// trees; the next commit that writes one writes every chunk.
	MetaFreeDeferred uint32 = 2
)

// MetaSize is the number of bytes of a meta page covered by its checksum.
const MetaSize = 128 // the last field ends at byte 128

// Meta field offsets.
const (
	metaMagic       = 32
	metaVersion     = 36
	metaPageSize    = 40
	metaFlags       = 44
	metaRoot        = 48
	metaFreelist    = 80
	metaFreeTx      = 88
	metaPgCount     = 96
	metaTxID        = 104
	metaCommitPages = 112
	metaCommitHash  = 120
)

// PutMeta writes m as meta page slot (0 or 1) into b, which must hold at
// least MetaSize bytes, and seals it.
func PutMeta(b []byte, slot ID, m *Meta) {
	clear(b[:MetaSize])
	PutHeader(b, slot, m.TxID, TypeMeta, 0, 0)
	le.PutUint32(b[metaMagic:], Magic)
	le.PutUint32(b[metaVersion:], Version)
	le.PutUint32(b[metaPageSize:], m.PageSize)
	le.PutUint32(b[metaFlags:], m.Flags)
	m.Root.Encode(b[metaRoot:])
	le.PutUint64(b[metaFreelist:], uint64(m.Freelist))
	le.PutUint64(b[metaFreeTx:], uint64(m.FreeTx))
	le.PutUint64(b[metaPgCount:], m.PgCount)
	le.PutUint64(b[metaTxID:], uint64(m.TxID))
	le.PutUint64(b[metaCommitPages:], m.CommitPages)
	le.PutUint64(b[metaCommitHash:], m.CommitHash)
	Seal(b[:MetaSize])
}

// DecodeMeta reads and validates the meta page in b (slot 0 or 1). It
// checks the checksum, magic, version and the internal consistency of the
// fields; it cannot know whether the pages the meta names are intact.
func DecodeMeta(b []byte, slot ID) (Meta, error) {
	var m Meta
	if len(b) < MetaSize {
		return m, formatErr("meta %d: short page", slot)
	}
	if mg := le.Uint32(b[metaMagic:]); mg != Magic {
		return m, formatErr("meta %d: bad magic %08x (not a mapkv file?)", slot, mg)
	}
	if v := le.Uint32(b[metaVersion:]); v != Version {
		return m, formatErr("meta %d: unsupported format version %d", slot, v)
	}
	if err := Verify(b[:MetaSize], slot, 0); err != nil {
		return m, err
	}
	if NodeType(b) != TypeMeta {
		return m, formatErr("meta %d: type %s", slot, NodeType(b))
	}
	m.PageSize = le.Uint32(b[metaPageSize:])
	m.Flags = le.Uint32(b[metaFlags:])
	m.Root, _ = DecodeRef(b[metaRoot : metaRoot+RefSize])
	m.Freelist = ID(le.Uint64(b[metaFreelist:]))
	m.FreeTx = TxID(le.Uint64(b[metaFreeTx:]))
	m.PgCount = le.Uint64(b[metaPgCount:])
	m.TxID = TxID(le.Uint64(b[metaTxID:]))
	m.CommitPages = le.Uint64(b[metaCommitPages:])
	m.CommitHash = le.Uint64(b[metaCommitHash:])
	if !ValidPageSize(int(m.PageSize)) {
		return m, formatErr("meta %d: invalid page size %d", slot, m.PageSize)
	}
	if m.TxID != Birth(b) {
		return m, formatErr("meta %d: txid %d differs from header txid %d", slot, m.TxID, Birth(b))
	}
	if m.PgCount < 2 {
		return m, formatErr("meta %d: page count %d", slot, m.PgCount)
	}
	if m.Root.Root == 1 || (m.Root.Root != 0 && uint64(m.Root.Root) >= m.PgCount) {
		return m, formatErr("meta %d: root page %d outside the file (%d pages)", slot, m.Root.Root, m.PgCount)
	}
	if m.Freelist == 1 || (m.Freelist != 0 && uint64(m.Freelist) >= m.PgCount) {
		return m, formatErr("meta %d: free-list page %d outside the file (%d pages)", slot, m.Freelist, m.PgCount)
	}
	if m.Flags&MetaFreeDeferred != 0 && (m.Freelist != 0 || m.FreeTx != 0) {
		return m, formatErr("meta %d: free list deferred but names page %d (tx %d)", slot, m.Freelist, m.FreeTx)
	}
	if m.Flags&^(MetaSynced|MetaFreeDeferred) != 0 {
		return m, formatErr("meta %d: unknown flags %#x", slot, m.Flags)
	}
	return m, nil
}

// ValidPageSize reports whether n is a page size a file may use.
func ValidPageSize(n int) bool {
	return n >= MinPageSize && n <= MaxPageSize && n&(n-1) == 0
}

// CommitMix folds one written node into a commit hash. The fold is a sum,
// so the order in which nodes are visited does not matter.
func CommitMix(h uint64, id ID, checksum uint64) uint64 {
	x := uint64(id)*0x9E3779B97F4A7C15 ^ checksum
	x ^= x >> 29
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 32
	return h + x
}
