//go:build linux

package mapkv_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapkv/mapkv"
)

// TestMultiProcessChild is the body of the reader processes that
// TestMultiProcess and TestKilledReader start; run directly it skips.
func TestMultiProcessChild(t *testing.T) {
	role := os.Getenv("MAPKV_CHILD_ROLE")
	if role == "" {
		t.Skip("helper process: runs only when started by TestMultiProcess or TestKilledReader")
	}
	path := os.Getenv("MAPKV_CHILD_DB")
	db, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	switch role {
	case "hold":
		tx, err := db.Begin(false)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println("ready", tx.ID())
		time.Sleep(time.Hour)
	case "reader":
		deadline := time.Now().Add(3 * time.Second)
		seen := map[string]bool{}
		txs := 0
		for time.Now().Before(deadline) {
			long := txs%10 == 0
			err := db.View(func(tx *mapkv.Tx) error {
				gen, err := readGeneration(tx)
				if err != nil {
					return err
				}
				if long {
					// A long transaction: the writer goes on, our pages
					// must stay as they were.
					time.Sleep(100 * time.Millisecond)
					again, err := readGeneration(tx)
					if err != nil {
						return err
					}
					if again != gen {
						return fmt.Errorf("generation changed inside a transaction: %s then %s", gen, again)
					}
					if err := tx.Check(nil); err != nil {
						return fmt.Errorf("check at tx %d: %w", tx.ID(), err)
					}
				}
				seen[gen] = true
				return nil
			})
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			txs++
		}
		fmt.Println("ok", txs, len(seen))
	}
	db.Close()
	os.Exit(0)
}

func startChild(t *testing.T, role, path string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcessChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MAPKV_CHILD_ROLE="+role, "MAPKV_CHILD_DB="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

// TestMultiProcess runs a writer in this process and two read-only
// processes beside it: each of their transactions must see exactly one
// committed state, unchanged for its whole life (checksums and contents
// verified), and new transactions must see new commits without reopening.
func TestMultiProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mp.db")
	db := mustOpen(t, path, &mapkv.Options{NoSync: true, PageSize: 1024, InitialSize: 8 << 10})
	if err := writeGeneration(db, 0); err != nil {
		t.Fatal(err)
	}
	var readers []*bufio.Scanner
	var cmds []*exec.Cmd
	for i := 0; i < 2; i++ {
		cmd, sc := startChild(t, "reader", path)
		cmds = append(cmds, cmd)
		readers = append(readers, sc)
	}
	lines := make([]string, len(cmds))
	done := make(chan struct{})
	go func() {
		// Read what each child printed before Wait closes the pipes.
		for i, sc := range readers {
			if sc.Scan() {
				lines[i] = sc.Text()
			}
			cmds[i].Wait()
		}
		close(done)
	}()
	gen := 1
	sawShared := false
	for {
		select {
		case <-done:
		default:
			if err := writeGeneration(db, gen); err != nil {
				t.Fatal(err)
			}
			gen++
			for _, r := range db.Stats().Readers {
				if r.PID != 0 {
					sawShared = true
				}
			}
			continue
		}
		break
	}
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "ok" {
			t.Fatalf("reader %d: %s", i, line)
		}
		states, _ := strconv.Atoi(f[2])
		if states < 2 {
			t.Errorf("reader %d saw %d committed states while %d were committed: it does not follow the writer", i, states, gen)
		}
		t.Logf("reader %d: %s transactions, %d distinct states (writer committed %d)", i, f[1], states, gen)
	}
	if !sawShared {
		t.Error("Stats never listed a reader of another process")
	}
	mustCheck(t, db)
}

// TestKilledReader kills a read-only process that holds a transaction
// open: its slot must be reclaimed, so it pins pages no longer.
func TestKilledReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kill.db")
	db := mustOpen(t, path, &mapkv.Options{NoSync: true})
	if err := writeGeneration(db, 0); err != nil {
		t.Fatal(err)
	}
	cmd, sc := startChild(t, "hold", path)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "ready") {
		t.Fatalf("child: %q", sc.Text())
	}
	pid := cmd.Process.Pid
	holds := func() bool {
		for _, r := range db.Stats().Readers {
			if r.PID == pid {
				return true
			}
		}
		return false
	}
	if !holds() {
		t.Fatalf("Stats does not list the child's reader: %+v", db.Stats().Readers)
	}
	for g := 1; g < 4; g++ {
		writeGeneration(db, g)
	}
	if db.Stats().PinnedPageN == 0 {
		t.Errorf("the child's open transaction pins no page: %+v", db.Stats())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	deadline := time.Now().Add(20 * time.Second)
	g := 4
	for holds() {
		if time.Now().After(deadline) {
			t.Fatal("the killed reader's slot was never reclaimed")
		}
		if err := writeGeneration(db, g); err != nil {
			t.Fatal(err)
		}
		g++
		time.Sleep(20 * time.Millisecond)
	}
	writeGeneration(db, g)
	writeGeneration(db, g+1)
	if st := db.Stats(); st.OldestReadTxID != 0 || st.PinnedPageN != 0 {
		t.Fatalf("after reclaiming: oldest reader %d, pinned pages %d", st.OldestReadTxID, st.PinnedPageN)
	}
	mustCheck(t, db)
}
