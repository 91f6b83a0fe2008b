package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// byteFormat is how keys and values are shown and read on the command
// line. Auto shows printable text as is and anything else as hex, and reads
// arguments as text.
type byteFormat string

const (
	formatAuto   byteFormat = "auto"
	formatText   byteFormat = "text"
	formatHex    byteFormat = "hex"
	formatBase64 byteFormat = "base64"
)

// addFormatFlag adds --format to cmd, storing into f.
func addFormatFlag(cmd *cobra.Command, f *string) {
	cmd.Flags().StringVar(f, "format", string(formatAuto),
		"how keys and values are printed and read: auto (text when printable, else hex; arguments as text), text, hex or base64")
}

// parseFormat validates a --format value.
func parseFormat(s string) (byteFormat, error) {
	switch f := byteFormat(s); f {
	case formatAuto, formatText, formatHex, formatBase64:
		return f, nil
	}
	return "", fmt.Errorf("--format %q: want auto, text, hex or base64", s)
}

// resolve returns the concrete format b is shown in.
func (f byteFormat) resolve(b []byte) byteFormat {
	if f != formatAuto {
		return f
	}
	if printable(b) {
		return formatText
	}
	return formatHex
}

// encode renders b for humans.
func (f byteFormat) encode(b []byte) string {
	switch f.resolve(b) {
	case formatHex:
		return hex.EncodeToString(b)
	case formatBase64:
		return base64.StdEncoding.EncodeToString(b)
	}
	return string(b)
}

// decode reads a command-line argument in this format (auto reads text).
func (f byteFormat) decode(what, s string) ([]byte, error) {
	switch f {
	case formatHex:
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s %q is not hex: %v", what, s, err)
		}
		return b, nil
	case formatBase64:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s %q is not base64: %v", what, s, err)
		}
		return b, nil
	}
	return []byte(s), nil
}

// printable reports whether b is valid UTF-8 made only of printable
// characters (spaces included, tabs and newlines not), so that printing it
// as text is unambiguous.
func printable(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 || !unicode.IsPrint(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

// jsonBytes is a key or value in --json output: exactly one field is set,
// naming the encoding, so that scripts never have to guess
// ({"text": "abc"}, {"hex": "00ff"} or {"base64": "AP8="}).
type jsonBytes struct {
	Text   *string `json:"text,omitempty"`
	Hex    *string `json:"hex,omitempty"`
	Base64 *string `json:"base64,omitempty"`
}

// json renders b for --json output. JSON strings cannot hold invalid
// UTF-8, so such bytes are given in hex even under --format text.
func (f byteFormat) json(b []byte) jsonBytes {
	if f.resolve(b) == formatText && !utf8.Valid(b) {
		f = formatHex
	}
	s := f.encode(b)
	switch f.resolve(b) {
	case formatHex:
		return jsonBytes{Hex: &s}
	case formatBase64:
		return jsonBytes{Base64: &s}
	}
	return jsonBytes{Text: &s}
}

// keyArgs reads what get, put, delete and keys take alike: the --format
// flag, the BUCKET path, and one key-like argument (what names it in
// errors) decoded in that format.
func keyArgs(format, bucket, what, s string) (byteFormat, [][]byte, []byte, error) {
	f, err := parseFormat(format)
	if err != nil {
		return f, nil, nil, err
	}
	path, err := parsePath(bucket)
	if err != nil {
		return f, nil, nil, err
	}
	b, err := f.decode(what, s)
	return f, path, b, err
}
