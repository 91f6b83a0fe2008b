package mapkv_test

// Real process kills: the test binary runs itself as a child that commits
// in a loop and prints each acknowledged commit; the parent SIGKILLs it at
// a random moment, reopens the file, runs Check, and compares the whole
// database with a model replayed from the same seed. The state must be
// the last acknowledged commit or the one after it (in flight when the
// signal came), never anything else. The kernel's page cache survives the
// kill, so this holds with NoSync too, and it is checked both ways.
//
// The default run does 30 kills; MAPKV_CRASH_ITER=N does N.

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mapkv/mapkv"
)

const (
	relChildEnv = "MAPKV_CRASH_CHILD" // the database path; set in the child only
	relSeedEnv  = "MAPKV_CRASH_CHILD_SEED"
	relOptsEnv  = "MAPKV_CRASH_CHILD_OPTS"
)

// relCrashOps returns the operations of commit i, the same in child and
// parent.
func relCrashOps(seed, i uint64, pageSize int) []relOp {
	rng := rand.New(rand.NewPCG(seed, i))
	return relGenCommit(rng, 8*pageSize)
}

// relCommitNumber reads the number of the last workload commit.
func relCommitNumber(tx *mapkv.Tx) (uint64, error) {
	b := tx.Bucket([]byte("meta"))
	if b == nil {
		return 0, nil
	}
	return strconv.ParseUint(string(b.Get([]byte("n"))), 10, 64)
}

func relParseOpts(s string) *mapkv.Options {
	o := &mapkv.Options{Timeout: 5 * time.Second, InitialSize: 8192, GrowStep: 32 << 10, ShrinkThreshold: 32 << 10}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "ps":
			o.PageSize = int(n)
		case "nosync":
			o.NoSync = n != 0
		case "syncthr":
			o.SyncThreshold = n
		case "maxsize":
			o.MaxSize = n
		case "writemap":
			o.WriteMap = n != 0
		}
	}
	return o
}

// TestCrashChild is the child process of TestCrashKill; it does nothing
// in a normal run.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(relChildEnv)
	if path == "" {
		t.Skip("runs only as the child of TestCrashKill")
	}
	seed, _ := strconv.ParseUint(os.Getenv(relSeedEnv), 10, 64)
	opts := relParseOpts(os.Getenv(relOptsEnv))
	out := os.Stdout // unbuffered: a line written is a line the parent reads
	// A child whose parent went away must not run forever.
	time.AfterFunc(60*time.Second, func() { os.Exit(3) })
	db, err := mapkv.Open(path, opts)
	if err != nil {
		fmt.Fprintf(out, "err open: %v\n", err)
		os.Exit(2)
	}
	var n uint64
	if err := db.View(func(tx *mapkv.Tx) (err error) { n, err = relCommitNumber(tx); return err }); err != nil {
		fmt.Fprintf(out, "err read: %v\n", err)
		os.Exit(2)
	}
	fmt.Fprintf(out, "open %d\n", n)
	// Readers and snapshots beside the writer, so that the kill also
	// lands while pages are pinned and the file is read.
	go func() {
		for {
			db.View(func(tx *mapkv.Tx) error {
				_, err := tx.WriteTo(io.Discard)
				if err == nil {
					_, err = relDump(tx)
				}
				if err != nil {
					fmt.Fprintf(out, "err reader: %v\n", err)
					os.Exit(2)
				}
				return nil
			})
			time.Sleep(time.Millisecond)
		}
	}()
	ps := db.Stats().PageSize
	for i := n + 1; ; i++ {
		ops := relCrashOps(seed, i, ps)
		err := db.Update(func(tx *mapkv.Tx) error {
			if err := relApplyDB(tx, ops); err != nil {
				return err
			}
			b, err := tx.CreateBucketIfNotExists([]byte("meta"))
			if err != nil {
				return err
			}
			return b.Put([]byte("n"), []byte(strconv.FormatUint(i, 10)))
		})
		if err != nil {
			fmt.Fprintf(out, "err commit %d: %v\n", i, err)
			os.Exit(2)
		}
		fmt.Fprintf(out, "ack %d\n", i)
	}
}

func TestCrashKill(t *testing.T) {
	if os.Getenv(relChildEnv) != "" {
		t.Skip("in the child")
	}
	iters := relEnvInt("MAPKV_CRASH_ITER", 30)
	if testing.Short() {
		iters = min(iters, 10)
	}
	seed := relSeed(t, "MAPKV_CRASH_SEED")
	rng := rand.New(rand.NewPCG(seed, 7))
	ps := []int{1024, 4096}[rng.IntN(2)]
	t.Logf("seed %d, page size %d (MAPKV_CRASH_SEED=%d to replay)", seed, ps, seed)
	path := filepath.Join(t.TempDir(), "crash.db")

	model := newRelBucket()
	var modelN uint64
	advance := func(to uint64) {
		for ; modelN < to; modelN++ {
			relApplyModel(model, relCrashOps(seed, modelN+1, ps))
			model.ensure([]string{"meta"}).kv["n"] = strconv.FormatUint(modelN+1, 10)
		}
	}

	var kills, inflight, beforeOpen, acks, fallbacks int
	start := time.Now()
	for it := 0; it < iters; it++ {
		o := fmt.Sprintf("ps=%d", ps)
		if rng.IntN(3) == 0 {
			o += ",nosync=1"
		}
		switch rng.IntN(3) {
		case 0:
			o += ",syncthr=1"
		case 1:
			o += ",syncthr=16384"
		}
		if rng.IntN(4) == 0 {
			o += ",maxsize=131072"
		}
		if rng.IntN(2) == 0 {
			o += ",writemap=1"
		}
		delay := time.Duration(rng.IntN(150)) * time.Millisecond
		if rng.IntN(8) == 0 {
			delay = -1 // kill as soon as it starts: during Open
		}
		last, opened, err := relRunChild(t, path, seed, o, delay)
		if err != nil {
			t.Fatalf("iteration %d (%s): %v", it, o, err)
		}
		kills++
		if !opened {
			beforeOpen++
		}
		prev := modelN
		want := max(last, prev)
		acks += int(want - prev)

		db, err := mapkv.Open(path, relParseOpts(o))
		if err != nil {
			t.Fatalf("iteration %d (%s, killed after ack %d): open: %v", it, o, last, err)
		}
		if db.Stats().MetaFallback != "" {
			fallbacks++
		}
		if err := db.Check(); err != nil {
			db.Close()
			t.Fatalf("iteration %d (%s, killed after ack %d): %v", it, o, last, err)
		}
		got, err := relDumpDB(db)
		var n uint64
		if err == nil {
			err = db.View(func(tx *mapkv.Tx) (err error) { n, err = relCommitNumber(tx); return err })
		}
		db.Close()
		if err != nil {
			t.Fatalf("iteration %d (%s): reading: %v", it, o, err)
		}
		if n != want && n != want+1 {
			t.Fatalf("iteration %d (%s): database at commit %d; the last acknowledged was %d (replay with MAPKV_CRASH_SEED=%d)", it, o, n, want, seed)
		}
		if n == want+1 {
			inflight++
		}
		advance(n)
		if d := relDiff(got, model, ""); d != "" {
			t.Fatalf("iteration %d (%s): database at commit %d differs from the model: %s (replay with MAPKV_CRASH_SEED=%d)", it, o, n, d, seed)
		}
	}
	t.Logf("%d SIGKILLs in %v (%d before the child had opened the file): %d commits acknowledged, all present; %d kills found the commit in flight durable; %d opens used the older meta",
		kills, time.Since(start).Round(time.Millisecond), beforeOpen, acks, inflight, fallbacks)
}

// relRunChild starts a child on path, kills it after delay (from the
// moment it has opened the database; negative: at once) and returns the
// last commit it acknowledged and whether it had opened the file.
func relRunChild(t *testing.T, path string, seed uint64, opts string, delay time.Duration) (last uint64, opened bool, err error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), relChildEnv+"="+path, relSeedEnv+"="+strconv.FormatUint(seed, 10), relOptsEnv+"="+opts)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, false, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, false, err
	}
	var (
		mu      sync.Mutex
		childEr string
		done    = make(chan struct{})
		openCh  = make(chan struct{})
		once    sync.Once
	)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			mu.Lock()
			switch f[0] {
			case "open":
				opened = true
				once.Do(func() { close(openCh) })
			case "ack":
				if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
					last = n
				}
			case "err":
				childEr = line
			}
			mu.Unlock()
		}
		once.Do(func() { close(openCh) })
	}()
	if delay >= 0 {
		select {
		case <-openCh:
		case <-time.After(30 * time.Second):
		}
		time.Sleep(delay)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	werr := cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	if childEr != "" {
		return last, opened, fmt.Errorf("child failed: %s", childEr)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		return last, opened, fmt.Errorf("child was not killed (%v); stderr: %s", werr, stderr.String())
	}
	return last, opened, nil
}
