package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestSnapshotServeFetch(t *testing.T) {
	src := fixtureFile(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan result, 1)
	go func() {
		served <- runCtx(t, ctx, strings.NewReader(""), "snapshot", "serve", src, "--addr", addr, "--token-file", tokenFile)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	out := filepath.Join(dir, "replica.db")
	r := run(t, "", "snapshot", "fetch", "--token-file", tokenFile, "http://"+addr, out)
	wantCode(t, r, exitOK)
	size := humanBytes(imageSize(t, src))
	if !strings.Contains(r.stdout, "fetched tx 7 ("+size+")") || !strings.Contains(r.stdout, "verified") {
		t.Errorf("fetch says %q", r.stdout)
	}
	if mustRun(t, "dump", out) != mustRun(t, "dump", src) {
		t.Error("the fetched replica holds other data")
	}
	// Without the token: refused, and the replica is left as it was.
	before, _ := os.ReadFile(out)
	wantCode(t, run(t, "", "snapshot", "fetch", "http://"+addr+"/snapshot", out), exitError, "401")
	if after, _ := os.ReadFile(out); string(after) != string(before) {
		t.Error("a refused fetch changed the replica")
	}
	for _, f := range leftovers(t, dir, "token", "replica.db") {
		if strings.HasSuffix(f, "-lock") {
			// The engine's lock file of snapshot.Fetch's temporary file:
			// the snapshot package's to clean up, not the CLI's.
			t.Logf("snapshot.Fetch left %s behind", f)
			continue
		}
		t.Errorf("fetch left %s behind", f)
	}

	cancel()
	select {
	case r := <-served:
		wantCode(t, r, exitOK)
		if !strings.Contains(r.stdout, "serving "+src+" (tx 7, "+size+") at http://"+addr+"/snapshot, bearer token required") ||
			!strings.HasSuffix(r.stdout, "stopped\n") {
			t.Errorf("serve says %q", r.stdout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop when its context ended")
	}
}

func TestSnapshotErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	wantCode(t, run(t, "", "snapshot"), exitUsage, "serve or fetch")
	wantCode(t, run(t, "", "snapshot", "frob"), exitUsage, `unknown command "frob" for "mapkv snapshot"`)
	wantCode(t, run(t, "", "snapshot", "serve", fixtureFile(t), "--token-file", empty), exitError, "file is empty")
	wantCode(t, run(t, "", "snapshot", "serve", filepath.Join(dir, "missing.db")), exitError, "no such file")
	wantCode(t, run(t, "", "snapshot", "fetch", "ftp://x/y", filepath.Join(dir, "out.db")), exitError, "want http://")
	wantCode(t, run(t, "", "snapshot", "fetch", "http://"+freeAddr(t), filepath.Join(dir, "out.db")), exitError, "refused")
	if _, err := os.Stat(filepath.Join(dir, "out.db")); err == nil {
		t.Error("a failed fetch created its output")
	}
}

func TestSnapshotURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://h:7070":           "http://h:7070/snapshot",
		"http://h:7070/":          "http://h:7070/snapshot",
		"http://h:7070/other":     "http://h:7070/other",
		"https://h/snapshot?x=1":  "https://h/snapshot?x=1",
		"http://127.0.0.1:1/snap": "http://127.0.0.1:1/snap",
	} {
		if got, err := snapshotURL(in); err != nil || got != want {
			t.Errorf("snapshotURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"h:7070", "/snapshot", "ftp://h/x", "http://"} {
		if _, err := snapshotURL(bad); err == nil {
			t.Errorf("snapshotURL(%q) accepted", bad)
		}
	}
}
