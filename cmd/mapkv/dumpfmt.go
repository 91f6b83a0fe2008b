package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The dump format is the text format of LMDB's mdb_dump and Berkeley DB's
// db_dump, so that mdb_load reads what "mapkv dump" writes and "mapkv
// load" reads what mdb_dump writes. A dump is a series of sections, one
// per bucket:
//
//	VERSION=3
//	format=bytevalue          (or print)
//	database=users/archive    (the bucket path; absent for an unnamed database)
//	type=btree
//	sequence=42               (mapkv only, when the bucket's sequence is not 0)
//	HEADER=END
//	 6b6579                   (a key: a space, then the bytes)
//	 76616c7565               (its value)
//	DATA=END
//
// In bytevalue format the bytes are lowercase hex. In print format the
// bytes 0x20-0x7e stand for themselves, except a backslash, written "\\",
// and every other byte is written "\" and two hex digits. mdb_load skips
// header keywords it does not know (with a warning), as load does.
//
// LMDB's own mdb_dump -p does not escape backslashes (db_dump -p and
// mapkv do), so its output is ambiguous where a backslash is followed by
// a backslash or two hex digits; load reads any other backslash as
// itself. Use bytevalue dumps (the default) to move data exactly.

// dumpWriter writes sections of a dump.
type dumpWriter struct {
	w     *bufio.Writer
	print bool
	buf   []byte
}

func newDumpWriter(w io.Writer, print bool) *dumpWriter {
	return &dumpWriter{w: bufio.NewWriterSize(w, 64<<10), print: print}
}

// header starts a section; name "" writes an unnamed one.
func (d *dumpWriter) header(name string, seq uint64) {
	format := "bytevalue"
	if d.print {
		format = "print"
	}
	fmt.Fprintf(d.w, "VERSION=3\nformat=%s\n", format)
	if name != "" {
		fmt.Fprintf(d.w, "database=%s\n", name)
	}
	d.w.WriteString("type=btree\n")
	if seq != 0 {
		fmt.Fprintf(d.w, "sequence=%d\n", seq)
	}
	d.w.WriteString("HEADER=END\n")
}

// record writes one key and its value.
func (d *dumpWriter) record(k, v []byte) {
	d.line(k)
	d.line(v)
}

func (d *dumpWriter) line(b []byte) {
	d.buf = appendDumpBytes(append(d.buf[:0], ' '), b, d.print)
	d.buf = append(d.buf, '\n')
	d.w.Write(d.buf)
}

// end closes a section.
func (d *dumpWriter) end() { d.w.WriteString("DATA=END\n") }

// flush writes out what is buffered and returns the first write error.
func (d *dumpWriter) flush() error { return d.w.Flush() }

const hexDigits = "0123456789abcdef"

// appendDumpBytes appends b encoded for a data line.
func appendDumpBytes(dst, b []byte, print bool) []byte {
	for _, c := range b {
		switch {
		case !print:
			dst = append(dst, hexDigits[c>>4], hexDigits[c&15])
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c >= 0x20 && c <= 0x7e:
			dst = append(dst, c)
		default:
			dst = append(dst, '\\', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return dst
}

// dumpHeader is what a section's header says.
type dumpHeader struct {
	print  bool
	name   string // database name: a bucket path, or "" when unnamed
	seq    uint64
	line   int      // line of the VERSION= that starts it
	ignore []string // keywords mapkv does not use, skipped
}

// dumpReader reads a dump section by section.
type dumpReader struct {
	r       *bufio.Reader
	n       int64 // bytes read
	line    int   // lines read
	keyLine int   // line of the key record last returned
	buf     []byte
	k, v    []byte
}

func newDumpReader(r io.Reader) *dumpReader {
	return &dumpReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// readLine returns the next line without its newline (and \r), valid
// until the next call; io.EOF at the end of the input.
func (d *dumpReader) readLine() ([]byte, error) {
	d.buf = d.buf[:0]
	for {
		chunk, err := d.r.ReadSlice('\n')
		d.buf = append(d.buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(d.buf) > 0 {
			break // a last line without a newline
		}
		if err != nil {
			return nil, err
		}
		break
	}
	d.n += int64(len(d.buf))
	d.line++
	b := bytes.TrimSuffix(d.buf, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r")), nil
}

// errorf reports a problem at the current line.
func (d *dumpReader) errorf(format string, args ...any) error {
	return errorAt(d.line, format, args...)
}

// errorAt reports a problem at a line of the dump.
func errorAt(line int, format string, args ...any) error {
	return fmt.Errorf("dump line %d: %s", line, fmt.Sprintf(format, args...))
}

// header reads the next section header; io.EOF when the input ends
// before one starts.
func (d *dumpReader) header() (dumpHeader, error) {
	var h dumpHeader
	line, err := d.readLine()
	for err == nil && len(line) == 0 {
		line, err = d.readLine() // blank lines between sections
	}
	if err != nil {
		return h, err
	}
	h.line = d.line
	if string(line) != "VERSION=3" {
		if bytes.HasPrefix(line, []byte("VERSION=")) {
			return h, d.errorf("unsupported dump %s (want VERSION=3)", line)
		}
		return h, d.errorf("expected VERSION=3, found %q", clip(line))
	}
	for {
		line, err := d.readLine()
		if err == io.EOF {
			return h, d.errorf("dump ends inside a header")
		}
		if err != nil {
			return h, err
		}
		if string(line) == "HEADER=END" {
			return h, nil
		}
		key, val, ok := bytes.Cut(line, []byte("="))
		if !ok {
			return h, d.errorf("expected KEYWORD=VALUE in the header, found %q", clip(line))
		}
		switch string(key) {
		case "format":
			switch string(val) {
			case "print":
				h.print = true
			case "bytevalue":
				h.print = false
			default:
				return h, d.errorf("unsupported format=%s (want bytevalue or print)", val)
			}
		case "type":
			if string(val) != "btree" {
				return h, d.errorf("unsupported type=%s (mapkv buckets are btrees)", val)
			}
		case "database", "subdatabase":
			h.name = string(val)
		case "sequence":
			if h.seq, err = strconv.ParseUint(string(val), 10, 64); err != nil {
				return h, d.errorf("sequence=%s is not a number", val)
			}
		case "duplicates", "dupsort", "dupfixed", "integerdup", "reversedup":
			if string(val) != "0" {
				return h, d.errorf("%s: a database with duplicate keys cannot be loaded (mapkv keys are unique)", line)
			}
		case "reversekey", "integerkey":
			if string(val) != "0" {
				return h, d.errorf("%s: mapkv orders keys bytewise only", line)
			}
		default:
			// mapsize, maxreaders, db_pagesize, mapaddr, keys, ... describe
			// the source store, not the data.
			h.ignore = append(h.ignore, string(key))
		}
	}
}

// record reads the next key and value of the section. ok is false at
// DATA=END. The slices are valid until the next call.
func (d *dumpReader) record(h *dumpHeader) (k, v []byte, ok bool, err error) {
	line, err := d.readLine()
	if err == io.EOF {
		return nil, nil, false, d.errorf("dump ends inside the data of a section (no DATA=END)")
	}
	if err != nil {
		return nil, nil, false, err
	}
	if string(line) == "DATA=END" {
		return nil, nil, false, nil
	}
	d.keyLine = d.line
	if d.k, err = d.decode(d.k[:0], line, h.print); err != nil {
		return nil, nil, false, err
	}
	line, err = d.readLine()
	if err == io.EOF || err == nil && string(line) == "DATA=END" {
		return nil, nil, false, d.errorf("a key without a value")
	}
	if err != nil {
		return nil, nil, false, err
	}
	if d.v, err = d.decode(d.v[:0], line, h.print); err != nil {
		return nil, nil, false, err
	}
	return d.k, d.v, true, nil
}

// decode reads a data line (" " and the encoded bytes) into dst.
func (d *dumpReader) decode(dst, line []byte, print bool) ([]byte, error) {
	if len(line) == 0 || line[0] != ' ' {
		return nil, d.errorf("expected a data line starting with a space, found %q", clip(line))
	}
	b, err := decodeDumpBytes(dst, line[1:], print)
	if err != nil {
		return nil, d.errorf("%v", err)
	}
	return b, nil
}

var errDumpHex = errors.New("bad hex")

// decodeDumpBytes is the inverse of appendDumpBytes.
func decodeDumpBytes(dst, s []byte, print bool) ([]byte, error) {
	if !print {
		if len(s)%2 != 0 {
			return nil, errors.New("odd number of hex digits")
		}
		for i := 0; i < len(s); i += 2 {
			c, err := unhex(s[i], s[i+1])
			if err != nil {
				return nil, err
			}
			dst = append(dst, c)
		}
		return dst, nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '\\' {
			dst = append(dst, '\\')
			i++
			continue
		}
		if i+2 < len(s) {
			if b, err := unhex(s[i+1], s[i+2]); err == nil {
				dst = append(dst, b)
				i += 2
				continue
			}
		}
		// A backslash that starts no escape stands for itself: LMDB's
		// mdb_dump -p writes backslashes unescaped.
		dst = append(dst, c)
	}
	return dst, nil
}

func unhex(a, b byte) (byte, error) {
	x, ok1 := hexval(a)
	y, ok2 := hexval(b)
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("%w %q", errDumpHex, []byte{a, b})
	}
	return x<<4 | y, nil
}

func hexval(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// clip shortens a line for an error message.
func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
