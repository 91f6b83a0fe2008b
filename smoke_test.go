package mapkv_test
import ("testing"; "fmt"; "path/filepath"; "github.com/mapkv/mapkv")
func TestSmoke(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	db, err := mapkv.Open(p, nil)
	if err != nil { t.Fatal(err) }
	for r := 0; r < 5; r++ {
	err = db.Update(func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil { return err }
		for i := 0; i < 20000; i++ { if err := b.Put([]byte(fmt.Sprintf("k%08d", i*7%20000+r)), []byte(fmt.Sprintf("v%d", i))); err != nil { return err } }
		return nil
	})
	if err != nil { t.Fatal(err) }
	}
	db.Close()
	db, err = mapkv.Open(p, nil)
	if err != nil { t.Fatal(err) }
	n := 0
	err = db.View(func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("b"))
		if v := b.Get([]byte("k00000007")); string(v) == "" { t.Errorf("missing") }
		var prev []byte
		for k, _ := range b.All() { if prev != nil && string(prev) >= string(k) { t.Fatalf("order") }; prev = append(prev[:0], k...); n++ }
		return nil
	})
	if err != nil { t.Fatal(err) }
	t.Log(n)
	db.Close()
}
