// Command soak runs mapkv under load for a while and checks it all along:
// one writer committing batches of random size, the file growing to a
// peak and shrinking back, readers with short and long transactions,
// snapshots streamed to io.Discard, a pipe and a file, and a full Check
// now and then. It prints what it did, the peak file size and pinned
// pages, and the goroutines and open file descriptors at the start and
// the end, and exits 1 if an invariant broke or something leaked.
//
//	go run ./cmd/soak -duration 10m
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(execute(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
