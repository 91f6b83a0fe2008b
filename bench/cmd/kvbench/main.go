// Command kvbench runs mapkv's side-by-side benchmark against bbolt, LMDB,
// Badger and Pebble and writes the report to a results folder.
//
// Usage:
//
//	kvbench [-n 1000000] [-count 3] [-engines mapkv,bbolt,lmdb,badger,pebble]
//	        [-workloads load-random,...] [-dir scratch] [-out results]
//	kvbench -from results/results.json [-out results]   # redraw the report only
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mapkv/mapkv/bench"
)

func main() {
	var cfg bench.Config
	var engines, wls, out string
	flag.IntVar(&cfg.N, "n", 1_000_000, "number of keys to load")
	flag.IntVar(&cfg.Count, "count", 3, "repetitions of every workload")
	flag.StringVar(&engines, "engines", strings.Join(bench.Engines(), ","), "comma-separated engines")
	flag.StringVar(&wls, "workloads", strings.Join(bench.Workloads(), ","), "comma-separated workloads")
	flag.StringVar(&cfg.Dir, "dir", "", "scratch directory for the databases (default: system temp dir)")
	flag.StringVar(&out, "out", "results", "results folder")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the data set")
	flag.IntVar(&cfg.Prefault, "prefault", 1024, "MiB of memory touched and freed before each turn (negative: none)")
	from := flag.String("from", "", "rewrite the report from this results.json instead of running")
	flag.Parse()
	cfg.Engines = split(engines)
	cfg.Workloads = split(wls)
	cfg.Log = os.Stderr

	var res *bench.Results
	var err error
	if *from != "" {
		res, err = bench.ReadResults(*from)
	} else {
		res, err = bench.Run(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvbench:", err)
		os.Exit(2)
	}
	if err := res.WriteReport(out); err != nil {
		fmt.Fprintln(os.Stderr, "kvbench:", err)
		os.Exit(2)
	}
	fmt.Println(res.Markdown())
	fmt.Fprintln(os.Stderr, "kvbench: report written to", filepath.Join(out, "RESULTS.md"))
	if len(res.Errors) > 0 {
		fmt.Fprintf(os.Stderr, "kvbench: %d workload run(s) failed; see the report\n", len(res.Errors))
		os.Exit(1)
	}
}

// split parses a comma-separated list, dropping empty items.
func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
