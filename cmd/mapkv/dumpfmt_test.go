package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestDumpBytes(t *testing.T) {
	for _, c := range []struct {
		in, bytevalue, print string
	}{
		{"", "", ""},
		{"abc", "616263", "abc"},
		{"a\\b", "615c62", `a\\b`},
		{"\x00\x7f\x80\xff ~", "007f80ff207e", `\00\7f\80\ff ~`},
		{"tab\there", "7461620968657265", `tab\09here`},
	} {
		if got := string(appendDumpBytes(nil, []byte(c.in), false)); got != c.bytevalue {
			t.Errorf("bytevalue(%q) = %q, want %q", c.in, got, c.bytevalue)
		}
		if got := string(appendDumpBytes(nil, []byte(c.in), true)); got != c.print {
			t.Errorf("print(%q) = %q, want %q", c.in, got, c.print)
		}
	}
	// mdb_dump -p leaves backslashes unescaped: a backslash that starts no
	// escape reads as itself; uppercase hex is accepted.
	for in, want := range map[string]string{`a\b`: `a\b`, `a\`: `a\`, `\FF\7e`: "\xff~", `\\\41`: `\A`} {
		got, err := decodeDumpBytes(nil, []byte(in), true)
		if err != nil || string(got) != want {
			t.Errorf("decode print %q = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "0g", "zz"} {
		if _, err := decodeDumpBytes(nil, []byte(bad), false); err == nil {
			t.Errorf("decode bytevalue %q: no error", bad)
		}
	}
}

// FuzzDumpBytes checks that both encodings of a data line read back
// exactly, and never produce a newline.
func FuzzDumpBytes(f *testing.F) {
	for _, s := range []string{"", "abc", "\\", "\\\\41", "\x00\n\r\xff", "\\x41"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, print := range []bool{false, true} {
			enc := appendDumpBytes(nil, b, print)
			if bytes.ContainsAny(enc, "\n\r") {
				t.Fatalf("encoding of %q holds a line break: %q", b, enc)
			}
			dec, err := decodeDumpBytes(nil, enc, print)
			if err != nil || !bytes.Equal(dec, b) {
				t.Fatalf("print=%v: %q -> %q -> %q, %v", print, b, enc, dec, err)
			}
		}
	})
}

// FuzzDumpReader feeds arbitrary input to the dump reader: it must end
// with an error or io.EOF, never panic, and whatever it accepts must
// survive being written and read again.
func FuzzDumpReader(f *testing.F) {
	f.Add(section("a", false, "6b", "76"))
	f.Add(section("a/b", true, `k\\`, `\00`) + section("", false))
	f.Add("VERSION=3\nformat=print\nHEADER=END\n k\n")
	f.Add("VERSION=3\r\nHEADER=END\r\n 6b\r\n 76\r\nDATA=END\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		r := newDumpReader(strings.NewReader(in))
		var out bytes.Buffer
		w := newDumpWriter(&out, false)
		type rec struct{ k, v string }
		var recs []rec
		for {
			h, err := r.header()
			if err != nil {
				break
			}
			w.header(h.name, h.seq)
			for {
				k, v, ok, err := r.record(&h)
				if err != nil || !ok {
					break
				}
				recs = append(recs, rec{string(k), string(v)})
				w.record(k, v)
			}
			w.end()
		}
		w.flush()
		r2 := newDumpReader(&out)
		i := 0
		for {
			h, err := r2.header()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("re-reading what the writer wrote: %v\n%s", err, out.String())
			}
			for {
				k, v, ok, err := r2.record(&h)
				if err != nil {
					t.Fatalf("re-reading what the writer wrote: %v", err)
				}
				if !ok {
					break
				}
				if i >= len(recs) || string(k) != recs[i].k || string(v) != recs[i].v {
					t.Fatalf("record %d changed on the way through", i)
				}
				i++
			}
		}
		if i != len(recs) {
			t.Fatalf("%d records written, %d read back", len(recs), i)
		}
	})
}
