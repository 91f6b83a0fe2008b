package bench

import (
	"fmt"
	"io"
	"slices"
)

// Config says what to run. The zero value of each field means its default.
type Config struct {
	// N is the number of pairs loaded (default 1,000,000).
	N int `json:"n"`
	// Count is the number of repetitions (default 3).
	Count int `json:"count"`
	// Engines to run (default: every engine compiled in).
	Engines []string `json:"engines"`
	// Workloads to run (default: all); they always run in canonical order.
	Workloads []string `json:"workloads"`
	// Dir is where scratch databases go (default: the system temp dir).
	// The run creates and removes its own directory inside it.
	Dir string `json:"dir"`
	// Seed makes the data set; the same seed gives the same keys.
	Seed uint64 `json:"seed"`
	// Commits bounds commit-sync and batch (default: N/100 clamped to
	// 64..2000).
	Commits int `json:"commits"`
	// MixedCommits is how many commits the mixed writer makes (default:
	// N/1000 clamped to 20..1000).
	MixedCommits int `json:"mixed_commits"`
	// Prefault is how many MiB of memory the pause before each turn
	// touches and gives back (default 1024; negative: none), so that the
	// page cache the next turn fills comes from memory the machine has
	// just used rather than memory a virtual machine's host has taken
	// back meanwhile (see settle).
	Prefault int `json:"prefault_mib"`
	// Log receives progress lines (default: discarded).
	Log io.Writer `json:"-"`
}

// Transaction sizes and fan-outs fixed by the workload definitions.
const (
	// LoadTxKeys is the number of keys per transaction in load-random,
	// load-sorted and the space workload's deletes.
	LoadTxKeys = 10_000
	// SmallTxKeys is the number of keys per transaction in load-random-1k.
	SmallTxKeys = 1_000
	// BatchWriters is the number of goroutines in the batch workload.
	BatchWriters = 8
	// MixedTxKeys is the number of new keys per commit of the mixed writer.
	MixedTxKeys = 10
	// MixedReadKeys is the number of lookups per read transaction of a
	// mixed reader.
	MixedReadKeys = 256
	// SnapshotStreams is how many copies the snapshot workload streams
	// per turn; the turn's figure is their median rate.
	SnapshotStreams = 5
	// DeleteFraction is the share of keys the space workload deletes.
	DeleteFraction = 0.9
)

// withDefaults returns c with every unset field filled in.
func (c Config) withDefaults() (Config, error) {
	if c.N == 0 {
		c.N = 1_000_000
	}
	if c.N < 100 {
		return c, fmt.Errorf("n = %d: need at least 100 keys", c.N)
	}
	if c.Count == 0 {
		c.Count = 3
	}
	if c.Count < 0 {
		return c, fmt.Errorf("count = %d", c.Count)
	}
	if len(c.Engines) == 0 {
		c.Engines = Engines()
	}
	if len(c.Workloads) == 0 {
		c.Workloads = Workloads()
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Prefault == 0 {
		c.Prefault = 1024
	}
	if c.Commits == 0 {
		c.Commits = min(max(c.N/100, 64), 2000)
	}
	if c.MixedCommits == 0 {
		c.MixedCommits = min(max(c.N/1000, 20), 1000)
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	c.Engines = slices.Clone(c.Engines)
	c.Workloads = slices.Clone(c.Workloads)
	return c, nil
}
