//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapkv/mapkv"
)

// TestLiveWriterProcess is the writing process of TestLiveInspection; run
// directly it skips.
func TestLiveWriterProcess(t *testing.T) {
	path := os.Getenv("MAPKV_LIVE_WRITER")
	if path == "" {
		t.Skip("helper process: runs only when started by TestLiveInspection")
	}
	db, err := mapkv.Open(path, &mapkv.Options{NoSync: true})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("live"))
			if err != nil {
				return err
			}
			return b.Put([]byte(fmt.Sprintf("key%08d", i)), []byte("value"))
		})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		if i == 0 {
			fmt.Println("ready")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLiveInspection runs stats, info and check on a database that another
// process is writing to: they must not wait for the writer, and must see
// its commits as they happen; info lists open readers of other processes.
func TestLiveInspection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLiveWriterProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MAPKV_LIVE_WRITER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("writer: %q", sc.Text())
	}
	keys := func() int {
		var r statsReport
		mustJSON(t, mustRun(t, "stats", "--json", "--timeout", "0s", path), &r)
		return r.Total.Keys
	}
	first := keys()
	deadline := time.Now().Add(20 * time.Second)
	for keys() <= first {
		if time.Now().After(deadline) {
			t.Fatal("stats never saw the writer's new commits")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mustRun(t, "check", path) // exit status 0: clean, beside the writer

	// A reader of another handle (a process of its own to the lock file)
	// shows in info.
	ro, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	tx, err := ro.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var r infoReport
	mustJSON(t, mustRun(t, "info", "--json", path), &r)
	found := false
	for _, rd := range r.Readers {
		if rd.PID == os.Getpid() && rd.TxID == tx.ID() {
			found = true
		}
	}
	if !found || r.OldestReader == 0 || r.OldestReader > tx.ID() {
		t.Fatalf("info does not list the open reader (pid %d, tx %d): %+v", os.Getpid(), tx.ID(), r)
	}
	human := mustRun(t, "info", path)
	if !strings.Contains(human, fmt.Sprintf("pid %d reads tx %d", os.Getpid(), tx.ID())) {
		t.Fatalf("info output lacks the reader:\n%s", human)
	}
}
