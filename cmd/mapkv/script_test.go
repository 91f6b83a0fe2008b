package main

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary stand in for the mapkv binary: testscript
// puts a copy of it on $PATH as "mapkv", and running that copy runs main.
// Scripts (testdata/script/*.txtar) and tests that exec "mapkv" so run
// the real command in its own process, signals and exit codes included.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"mapkv": main})
}

// TestScripts runs the command-line scripts in testdata/script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		UpdateScripts:       *update,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"flipbyte": cmdFlipByte,
			"damage":   cmdDamage,
		},
	})
}

// cmdFlipByte is the script command "flipbyte FILE OFFSET": it inverts the
// bits of one byte of FILE, to damage a database on purpose.
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	off, err := strconv.ParseInt(args[1], 0, 64)
	if err != nil {
		ts.Fatalf("flipbyte: %v", err)
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_RDWR, 0)
	ts.Check(err)
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		ts.Fatalf("flipbyte: %v", fmt.Errorf("reading offset %d: %w", off, err))
	}
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	ts.Check(err)
}

// cmdDamage is the script command "damage FILE BUCKET": it flips a byte
// in the middle of a leaf of BUCKET that an older commit than the newest
// wrote, so that the file still opens and check has to find the damage,
// whatever the page layout.
func cmdDamage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: damage FILE BUCKET")
	}
	path := ts.MkAbs(args[0])
	pf, err := openPageFile(path, 0)
	ts.Check(err)
	rows := pf.rows()
	pf.close()
	var newest uint64
	for _, r := range rows {
		newest = max(newest, r.TxID)
	}
	for _, r := range rows {
		if r.Type == "leaf" && r.Owner == "bucket "+args[1] && r.TxID < newest {
			cmdFlipByte(ts, false, []string{args[0], strconv.FormatUint(r.ID*uint64(pf.ps)+uint64(pf.ps)/2, 10)})
			return
		}
	}
	ts.Fatalf("damage: no leaf of bucket %s older than tx %d", args[1], newest)
}
