// Package bench runs the same workloads against mapkv and the stores Go
// developers would otherwise pick (bbolt, LMDB, Badger, Pebble), side by
// side in one process, and writes a Markdown report, SVG charts and the raw
// measurements as JSON.
//
// Engines run interleaved: for each repetition, for each workload, each
// engine in turn (starting with a different engine each repetition), so
// that the machine's drift hits all of them alike. Every engine runs with
// its durable defaults: every commit is synced before it returns.
//
// The command is cmd/kvbench; run.sh installs what it needs and runs it.
// See README.md for what each workload measures.
package bench
