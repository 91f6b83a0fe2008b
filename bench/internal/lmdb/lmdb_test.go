package lmdb

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// TestRoundTrip writes, reads, scans, deletes and copies through the shim.
func TestRoundTrip(t *testing.T) {
	const n, klen, vlen = 1000, 8, 20
	env, err := Open(t.TempDir(), 1<<26)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	keys := make([]byte, n*klen)
	vals := bytes.Repeat([]byte{7}, n*vlen)
	for i := range n {
		binary.BigEndian.PutUint64(keys[i*klen:], uint64(i))
	}
	if err := env.Put(keys, klen, vals, vlen); err != nil {
		t.Fatal(err)
	}
	found, sum, err := env.Get(keys, klen)
	if err != nil || found != n || sum != n*(vlen+7) {
		t.Fatalf("Get = %d, %d, %v; want %d, %d", found, sum, err, n, n*(vlen+7))
	}
	count, sum, err := env.Scan()
	if err != nil || count != n || sum != n*(klen+vlen) {
		t.Fatalf("Scan = %d, %d, %v", count, sum, err)
	}
	if err := env.Delete(keys[:n/2*klen], klen); err != nil {
		t.Fatal(err)
	}
	if found, _, _ := env.Get(keys, klen); found != n/2 {
		t.Fatalf("after deleting half, found %d", found)
	}
	if err := env.Delete(keys[:klen], klen); err == nil {
		t.Fatal("deleting a missing key succeeded")
	}

	f, err := os.Create(t.TempDir() + "/copy.mdb")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := env.CopyFD(f.Fd()); err != nil {
		t.Fatal(err)
	}
	if fi, _ := f.Stat(); fi.Size() == 0 {
		t.Fatal("copy is empty")
	}
}
