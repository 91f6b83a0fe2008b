package main

import (
	"bytes"
	"testing"
)

func TestParsePath(t *testing.T) {
	for in, want := range map[string][]string{
		"a":           {"a"},
		"a/b/c":       {"a", "b", "c"},
		`a\/b`:        {"a/b"},
		`a\\/b`:       {`a\`, "b"},
		`\x00\xff/z`:  {"\x00\xff", "z"},
		`caf\xc3\xa9`: {"café"},
		"café/ü":      {"café", "ü"},
	} {
		got, err := parsePath(in)
		if err != nil {
			t.Errorf("parsePath(%q): %v", in, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("parsePath(%q) = %q, want %q", in, got, want)
			continue
		}
		for i := range got {
			if string(got[i]) != want[i] {
				t.Errorf("parsePath(%q) = %q, want %q", in, got, want)
			}
		}
	}
	for _, bad := range []string{"", "/", "a/", "/a", "a//b", `a\`, `a\q`, `a\x0`, `a\xzz`} {
		if p, err := parsePath(bad); err == nil {
			t.Errorf("parsePath(%q) = %q, want an error", bad, p)
		}
	}
	for name, want := range map[string]string{
		"plain": "plain", "a/b": `a\/b`, `back\slash`: `back\\slash`, "\x00\x01": `\x00\x01`,
		"tab\t": `tab\x09`, "café": "café", "\xff": `\xff`, "sp ace": "sp ace",
	} {
		if got := formatName([]byte(name)); got != want {
			t.Errorf("formatName(%q) = %q, want %q", name, got, want)
		}
	}
}

// FuzzBucketPath checks that every bucket name survives formatName and
// parsePath, and that parsePath never panics and reads back what
// formatPath writes.
func FuzzBucketPath(f *testing.F) {
	for _, s := range []string{"a", "a/b", `a\/b`, `\x00`, "\xff\xfe", "é/ü", `\\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s != "" {
			p, err := parsePath(formatName([]byte(s)))
			if err != nil || len(p) != 1 || !bytes.Equal(p[0], []byte(s)) {
				t.Fatalf("name %q: formatName gives %q, which parses to %q, %v", s, formatName([]byte(s)), p, err)
			}
		}
		p, err := parsePath(s)
		if err != nil {
			return
		}
		q, err := parsePath(formatPath(p))
		if err != nil || len(q) != len(p) {
			t.Fatalf("path %q: %q -> %q -> %q, %v", s, p, formatPath(p), q, err)
		}
		for i := range p {
			if !bytes.Equal(p[i], q[i]) {
				t.Fatalf("path %q: %q -> %q -> %q", s, p, formatPath(p), q)
			}
		}
	})
}
