package mapkv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/mapkv/mapkv/btree"
	"github.com/mapkv/mapkv/page"
)

// TestPutsPayload: a payload decodes to the base and puts it was made
// from; one too long for its node is not made; a torn or damaged one,
// or one whose checksum holds over a malformed body, does not decode.
func TestPutsPayload(t *testing.T) {
	muts := []btree.Mutation{
		{Key: []byte("k1"), Value: []byte("one")},
		{Key: []byte("k2"), Value: nil},
		{Key: bytes.Repeat([]byte("x"), 300), Value: bytes.Repeat([]byte("y"), 200)},
	}
	buf := []byte("junk before")
	ref := appendPuts(&buf, 77, muts, 4096)
	if ref == 0 {
		t.Fatal("appendPuts refused a payload shorter than its node")
	}
	p := putsAt(buf, ref)
	base, got, ok := decodePuts(p)
	if !ok || base != 77 || putsBase(p) != 77 || len(got) != len(muts) {
		t.Fatalf("decoded base %d, %d puts, ok %v; want 77, %d", base, len(got), ok, len(muts))
	}
	for i := range muts {
		if !bytes.Equal(got[i].Key, muts[i].Key) || !bytes.Equal(got[i].Value, muts[i].Value) {
			t.Fatalf("put %d: %q=%q, want %q=%q", i, got[i].Key, got[i].Value, muts[i].Key, muts[i].Value)
		}
	}
	before := len(buf)
	if ref := appendPuts(&buf, 77, muts, 500); ref != 0 || len(buf) != before {
		t.Fatalf("a payload longer than its 500-byte node: ref %d, buffer %d -> %d bytes", ref, before, len(buf))
	}
	for n := range len(p) {
		if _, _, ok := decodePuts(p[:n]); ok {
			t.Fatalf("payload cut to %d of %d bytes decodes", n, len(p))
		}
	}
	for i := range p {
		d := slices.Clone(p)
		d[i] ^= 0x10
		if _, _, ok := decodePuts(d); ok {
			t.Fatalf("payload with byte %d damaged decodes", i)
		}
	}
	// Bodies whose checksum is right but which do not hold together.
	reseal := func(body []byte) []byte {
		return binary.LittleEndian.AppendUint64(body, xxhash.Sum64(body))
	}
	body := p[:len(p)-8]
	for name, b := range map[string][]byte{
		"count too high":   binary.LittleEndian.AppendUint32(slices.Clone(body[:8]), 4),
		"bytes left over":  append(slices.Clone(body), 0),
		"key past the end": append(binary.LittleEndian.AppendUint32(slices.Clone(body[:8]), 1), 100, 0, 'k'),
		"bad varint":       append(binary.LittleEndian.AppendUint32(slices.Clone(body[:8]), 1), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	} {
		if name == "count too high" {
			b = append(b, body[12:]...)
		}
		if _, _, ok := decodePuts(reseal(b)); ok {
			t.Errorf("%s: decodes", name)
		}
	}
}

// sealRecorder is a btree allocator over a plain buffer that keeps what
// SealPuts is told.
type sealRecorder struct {
	t    *btree.Tree
	puts []byte
	refs map[page.ID]uint32
	sums map[page.ID]uint64
}

func (a *sealRecorder) Alloc(n int) (page.ID, []byte, error) {
	id := page.ID(a.t.PgCount)
	a.t.PgCount += uint64(n)
	ps := a.t.PageSize
	return id, a.t.Data[int(id)*ps : (int(id)+n)*ps], nil
}
func (a *sealRecorder) Free(page.ID, int) {}
func (a *sealRecorder) Seal(id page.ID, node []byte, _ int) {
	a.sums[id] = page.Seal(node)
}
func (a *sealRecorder) SealPuts(id page.ID, node []byte, used int, base page.ID, _ []byte, muts []btree.Mutation) {
	a.sums[id] = page.Seal(node)
	a.refs[id] = appendPuts(&a.puts, base, muts, used)
}

// TestRebuildPuts: a node logged as puts is built again from the page
// it replaced as the data file holds it when the replay gets there, and
// refused (an error, no panic) when that page does not verify or the
// node built does not have the listed checksum.
func TestRebuildPuts(t *testing.T) {
	const ps = 1024
	tr := &btree.Tree{Data: make([]byte, 64*ps), PageSize: ps, PgCount: 2}
	a := &sealRecorder{t: tr, refs: map[page.ID]uint32{}, sums: map[page.ID]uint64{}}
	var muts []btree.Mutation
	for i := range 6 {
		muts = append(muts, btree.Mutation{Key: fmt.Appendf(nil, "key%03d", i*10), Value: []byte("value")})
	}
	base, _, err := (&btree.Writer{T: tr, A: a, TxID: 1}).Apply(0, 0, muts)
	if err != nil {
		t.Fatal(err)
	}
	put := []btree.Mutation{{Key: []byte("key015"), Value: []byte("new")}, {Key: []byte("key030"), Value: []byte("changed")}}
	id, _, err := (&btree.Writer{T: tr, A: a, TxID: 2}).Apply(base, 1, put)
	if err != nil {
		t.Fatal(err)
	}
	ref := a.refs[id]
	if ref == 0 {
		t.Fatalf("node %d was not told to SealPuts", id)
	}
	p := putsAt(a.puts, ref)
	pb, pm, ok := decodePuts(p)
	if !ok || pb != base {
		t.Fatalf("the payload decodes to base %d (ok %v), want %d", pb, ok, base)
	}
	want := tr.Data[int(id)*ps : int(id+1)*ps]
	file := slices.Clone(tr.Data)
	read := func(b []byte, id page.ID) error {
		copy(b, file[int(id)*ps:])
		return nil
	}
	dst := make([]byte, ps)
	if err := rebuildPuts(dst, pb, pm, id, 2, a.sums[id], read); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst, want) {
		t.Fatal("the node built from the puts is not the node the commit wrote")
	}
	if err := rebuildPuts(dst, pb, pm, id, 2, a.sums[id]^1, read); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("wrong listed checksum: %v", err)
	}
	if err := rebuildPuts(dst, pb, pm, id, 3, a.sums[id], read); err == nil {
		t.Fatal("built under another txid: no error")
	}
	file[int(base)*ps+200] ^= 1
	if err := rebuildPuts(dst, pb, pm, id, 2, a.sums[id], read); err == nil {
		t.Fatal("a damaged base page: no error")
	}
	file[int(base)*ps+200] ^= 1
	// The replay decodes a payload when it reads the record
	// (decodeRecord), then rebuilds from what it decoded.
	bad := slices.Clone(p)
	bad[13] ^= 1
	if _, _, ok := decodePuts(bad); ok {
		t.Fatal("a damaged payload decodes")
	}
	other := slices.Clone(pm)
	other[0].Value = []byte("other")
	if err := rebuildPuts(dst, pb, other, id, 2, a.sums[id], read); err == nil {
		t.Fatal("other puts than the record's: no error")
	}
}
