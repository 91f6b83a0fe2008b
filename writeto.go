package mapkv

import (
	"io"

	"github.com/mapkv/mapkv/page"
)

// WriteTo writes a consistent image of the database as this transaction
// sees it: a valid mapkv file of exactly Size() bytes, whatever commits
// happen meanwhile. The two meta pages are rebuilt from the transaction's
// own meta; every other byte comes straight from the mapping.
func (tx *Tx) WriteTo(w io.Writer) (int64, error) {
	if tx.closed {
		return 0, ErrTxClosed
	}
	var n int64
	err := guard(func() error {
		metas := tx.metaPages()
		m, err := w.Write(metas)
		n += int64(m)
		if err != nil {
			return err
		}
		off := int64(len(metas))
		size := tx.Size()
		const chunk = 1 << 20
		for off < size {
			end := min(off+chunk, size)
			m, err := w.Write(tx.m.region.Data[off:end])
			n += int64(m)
			if err != nil {
				return err
			}
			off = end
		}
		return nil
	})
	return n, err
}

// metaPages builds the two meta pages of a snapshot from the transaction's
// meta. The data was verified when it was committed and the receiver
// syncs the image, so the metas are marked as synced.
func (tx *Tx) metaPages() []byte {
	ps := tx.db.pageSize
	buf := make([]byte, 2*ps)
	m := tx.meta
	m.Flags |= page.MetaSynced
	for slot := 0; slot < 2; slot++ {
		page.PutMeta(buf[slot*ps:], page.ID(slot), &m)
	}
	return buf
}
