package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// section returns a dump section of database name (none if "") holding
// the key/value lines given, in bytevalue format unless print.
func section(name string, print bool, lines ...string) string {
	var b strings.Builder
	format := "bytevalue"
	if print {
		format = "print"
	}
	fmt.Fprintf(&b, "VERSION=3\nformat=%s\n", format)
	if name != "" {
		fmt.Fprintf(&b, "database=%s\n", name)
	}
	b.WriteString("type=btree\nHEADER=END\n")
	for _, l := range lines {
		b.WriteString(" " + l + "\n")
	}
	b.WriteString("DATA=END\n")
	return b.String()
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	// What mdb_dump writes, header keywords and all.
	dump := "VERSION=3\nformat=bytevalue\ndatabase=a\ntype=btree\nmapsize=1048576\nmaxreaders=126\ndb_pagesize=4096\nHEADER=END\n" +
		" 6b31\n 7631\n 6b32\n \nDATA=END\n" +
		section("a/b", true, `x\\y`, `\00\ff`, "k", "v")
	r := run(t, dump, "load", path)
	wantCode(t, r, exitOK)
	if r.stderr != "" {
		t.Errorf("load warned about mdb_dump's own header keywords: %s", r.stderr)
	}
	for _, c := range []struct{ args, want string }{
		{"a k1", "v1\n"}, {"a k2", "\n"}, {`a/b x\y`, "00ff\n"}, {"a/b k", "v\n"},
	} {
		if got := mustRun(t, append([]string{"get", path}, strings.Fields(c.args)...)...); got != c.want {
			t.Errorf("get %s = %q, want %q", c.args, got, c.want)
		}
	}

	// Existing keys are replaced, unless --no-overwrite.
	mustRun(t, "put", path, "a", "k1", "old")
	r = run(t, section("a", false, "6b31", "6e6577", "6b33", "33"), "load", "--no-overwrite", path)
	wantCode(t, r, exitOK)
	if !strings.Contains(r.stdout, "1 existing key kept") {
		t.Errorf("load --no-overwrite summary: %q", r.stdout)
	}
	if got := mustRun(t, "get", path, "a", "k1"); got != "old\n" {
		t.Errorf("--no-overwrite replaced a key: %q", got)
	}
	mustRun(t, "load", path, "--file", writeTemp(t, section("a", false, "6b31", "6e6577")))
	if got := mustRun(t, "get", path, "a", "k1"); got != "new\n" {
		t.Errorf("load --file did not replace a key: %q", got)
	}

	// An unnamed database needs --bucket; named ones go beneath it.
	wantCode(t, run(t, section("", false, "6b", "76"), "load", path), exitError, "unnamed database", "--bucket")
	mustRun(t, "load", path, "--bucket", "top")
	r = run(t, section("", false, "6b", "76")+section("sub", false, "6b", "77"), "load", "--bucket", "top", path)
	wantCode(t, r, exitOK)
	if got := mustRun(t, "get", path, "top/sub", "k"); got != "w\n" {
		t.Errorf("get top/sub k = %q", got)
	}
	mustRun(t, "check", path)
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.dump")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadBatches(t *testing.T) {
	var lines []string
	for i := 0; i < 250; i++ {
		lines = append(lines, fmt.Sprintf("%08x", i), "76")
	}
	path := filepath.Join(t.TempDir(), "new.db")
	r := run(t, section("b", false, lines...), "load", "--batch", "100", path)
	wantCode(t, r, exitOK)
	if !strings.Contains(r.stdout, "loaded 250 keys in 1 bucket section, 3 transactions") {
		t.Errorf("load --batch 100: %q", r.stdout)
	}
	var info infoReport
	mustJSON(t, mustRun(t, "info", "--json", path), &info)
	if info.TxID != 3 || info.Keys != 250 {
		t.Errorf("after load: txid %d, %d keys", info.TxID, info.Keys)
	}
	wantCode(t, run(t, "", "load", "--batch", "0", path), exitUsage)
}

func TestLoadErrors(t *testing.T) {
	good := section("a", false, "6b31", "7631")
	for _, c := range []struct{ dump, msg string }{
		{"VERSION=2\n", "dump line 1: unsupported dump VERSION=2"},
		{"hello\n", "dump line 1: expected VERSION=3"},
		{"VERSION=3\nformat=cooked\n", "dump line 2: unsupported format=cooked"},
		{"VERSION=3\ntype=hash\n", "unsupported type=hash"},
		{"VERSION=3\nduplicates=1\n", "duplicate keys cannot be loaded"},
		{"VERSION=3\nformat=bytevalue\n", "dump ends inside a header"},
		{"VERSION=3\nnonsense\n", "expected KEYWORD=VALUE"},
		{good + section("b", false, "6b"), "dump line 15: a key without a value"},
		{good + section("b", false, "6b", "zz"), "dump line 15: bad hex"},
		{good + section("b", false, "6", "7"), "odd number of hex digits"},
		{good + section("b", false, "", "76"), "key required"},
		{good + "VERSION=3\nHEADER=END\n 6b\n 76\n", "dump line 9: the dump has an unnamed database"},
		{good + "VERSION=3\ndatabase=c\nHEADER=END\n 6b\n 76\n", "no DATA=END"},
		{good + "VERSION=3\ndatabase=c\nHEADER=END\nkey\n", "expected a data line starting with a space"},
		{good + section(`bad\q`, false), `dump line 9: database=bad\q`},
	} {
		path := filepath.Join(t.TempDir(), "new.db")
		r := run(t, c.dump, "load", "--batch", "1", path)
		wantCode(t, r, exitError, c.msg)
		// What came before the error is committed, and said so.
		if strings.HasPrefix(c.dump, good) {
			if !strings.Contains(r.stderr, "loaded and committed before it: ") {
				t.Errorf("load error does not say how far it got: %s", r.stderr)
			}
			if got := mustRun(t, "get", path, "a", "k1"); got != "v1\n" {
				t.Errorf("the keys before the error were not kept: %q", got)
			}
		}
	}
	// A key that names a nested bucket.
	path := filepath.Join(t.TempDir(), "new.db")
	mustRun(t, "put", "--create", path, "a/b", "k", "v")
	wantCode(t, run(t, section("a", false, "62", "76"), "load", path), exitError, "dump line 6: bucket a", "names a bucket")
}

// cancelAfter is a reader that cancels a context once n bytes were read,
// as a Ctrl-C in the middle of a load would.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	if len(p) > 100 {
		p = p[:100] // small reads, so that the cancel lands mid-batch
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func TestLoadInterrupted(t *testing.T) {
	var lines []string
	for i := 0; i < 1000; i++ {
		lines = append(lines, fmt.Sprintf("%08x", i), "76")
	}
	dump := section("b", false, lines...)
	path := filepath.Join(t.TempDir(), "new.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := runCtx(t, ctx, &cancelAfter{r: strings.NewReader(dump), n: len(dump) / 2, cancel: cancel}, "load", "--batch", "300", path)
	wantCode(t, r, exitInterrupted)
	// The transaction in progress when it was interrupted is finished
	// (committed with what it read), and the count is exact.
	m := regexp.MustCompile(`^interrupted: loaded (\d+) keys in 1 bucket section\w*, (\d) transactions into .*; committed up to dump line (\d+) \(bucket b\); the rest was not loaded\n$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("interrupted load says %q", r.stdout)
	}
	keys, _ := strconv.Atoi(m[1])
	if keys < 300 || keys >= 1000 || m[2] < "2" {
		t.Errorf("interrupted after %d keys in %s transactions", keys, m[2])
	}
	var info infoReport
	mustJSON(t, mustRun(t, "info", "--json", path), &info)
	if info.Keys != keys {
		t.Errorf("load said %d keys were committed, the database has %d", keys, info.Keys)
	}
	mustRun(t, "check", path)
}

// TestLoadSIGINT sends a real SIGINT to a load running in its own
// process (the mapkv on $PATH is this test binary, see TestMain).
func TestLoadSIGINT(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	cmd := exec.Command("mapkv", "load", "--batch", "1000000", path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "VERSION=3\ndatabase=b\nHEADER=END\n")
	for i := 0; i < 500; i++ {
		fmt.Fprintf(stdin, " %08x\n 76\n", i)
	}
	// Wait until load has created the database (its signal handler is
	// in place by then) and is blocked reading, in the middle of its only
	// transaction; then interrupt it and give it one more record.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("load did not create the database")
		}
	}
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(100 * time.Millisecond)
	fmt.Fprintf(stdin, " %08x\n 76\n", 500)
	err = cmd.Wait()
	stdin.Close()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("load after SIGINT: %v; stdout %q; stderr %q", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "interrupted: loaded 501 keys") {
		t.Errorf("load after SIGINT says %q", out.String())
	}
	var info infoReport
	mustJSON(t, mustRun(t, "info", "--json", path), &info)
	if info.Keys != 501 {
		t.Errorf("the database has %d keys, want the 501 read before and just after the signal", info.Keys)
	}
}
