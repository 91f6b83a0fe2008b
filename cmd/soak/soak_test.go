package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSoakShort runs the soak for a few seconds on a small file that grows
// past its reservation and shrinks back; MAPKV_SOAK_DURATION runs it longer.
func TestSoakShort(t *testing.T) {
	d := 4 * time.Second
	if v, err := time.ParseDuration(os.Getenv("MAPKV_SOAK_DURATION")); err == nil {
		d = v
	}
	var out, errOut bytes.Buffer
	args := []string{"-duration", d.String(), "-peak", "3000000", "-maxsize", "1048576",
		"-maxbatch", "400", "-readers", "3", "-check", "1s", "-snapshot", "200ms", "-pagesize", "1024", "-q"}
	code := execute(context.Background(), args, &out, &errOut)
	t.Logf("%s%s", out.String(), errOut.String())
	if code != 0 {
		t.Fatalf("soak exited %d", code)
	}
	if !strings.Contains(out.String(), "result           ok") {
		t.Fatal("no ok result")
	}
}
