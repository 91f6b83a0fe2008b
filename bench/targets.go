package bench

import (
	"fmt"
	"strings"
)

// Target verdicts.
const (
	Pass = "PASS"
	Miss = "MISS"
	NA   = "n/a" // a figure the target needs was not measured
)

// TargetResult is one row of the targets table, checked against a
// run's medians.
type TargetResult struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	// Verdict is Pass, Miss or NA. A target with any failed clause is a
	// Miss even if another clause could not be checked.
	Verdict string `json:"verdict"`
	Detail  string `json:"detail"`
}

// clause is one condition of a target.
type clause struct {
	text     string // what was measured, e.g. "2.41× bbolt"
	want     string // the bound, e.g. "≥ 2"
	measured bool
	pass     bool
}

// ratio returns median(workload/metric of a) ÷ median(of b).
func (res *Results) ratio(workload, metric, a, b string) (float64, bool) {
	x, ok1 := res.summarize(workload, metric, a)
	y, ok2 := res.summarize(workload, metric, b)
	if !ok1 || !ok2 || y.median == 0 {
		return 0, false
	}
	return x.median / y.median, true
}

// atLeast is the clause "mapkv's metric ÷ peer's ≥ bound".
func (res *Results) atLeast(workload, metric, peer string, bound float64, label string) clause {
	r, ok := res.ratio(workload, metric, "mapkv", peer)
	return clause{
		text: fmt.Sprintf("%s× %s", formatRatio(r), label), want: "≥ " + trimFloat(bound),
		measured: ok, pass: ok && r >= bound,
	}
}

// atMost is the clause "mapkv's metric ÷ peer's ≤ bound".
func (res *Results) atMost(workload, metric, peer string, bound float64, label string) clause {
	r, ok := res.ratio(workload, metric, "mapkv", peer)
	return clause{
		text: fmt.Sprintf("%s× %s", formatRatio(r), label), want: "≤ " + trimFloat(bound),
		measured: ok, pass: ok && r <= bound,
	}
}

// own is a clause on one of mapkv's own figures.
func (res *Results) own(workload, metric string, ok func(float64) bool, unit, want string) clause {
	s, measured := res.summarize(workload, metric, "mapkv")
	return clause{
		text: formatValue(s.median) + unit, want: want,
		measured: measured, pass: measured && ok(s.median),
	}
}

// CheckTargets checks each target of the table that the run has
// figures for.
func (res *Results) CheckTargets() []TargetResult {
	type target struct {
		workload, text string
		clauses        []clause
	}
	ts := []target{
		{"get-random", "≥ 2× bbolt and ≥ 1.3× LMDB (C loop), 0 allocs", []clause{
			res.atLeast("get-random", "single", "bbolt", 2, "bbolt"),
			res.atLeast("get-random", "single", "lmdb", 1.3, "lmdb"),
			res.own("get-random", "allocs", func(v float64) bool { return v < 0.005 }, " allocs/op", "< 0.005"),
		}},
		{"scan", "≥ 2× bbolt, faster than LMDB", []clause{
			res.atLeast("scan", "throughput", "bbolt", 2, "bbolt"),
			res.atLeast("scan", "throughput", "lmdb", 1, "lmdb"),
		}},
		{"load-random (10k/tx)", "≥ 3× bbolt and ≥ 1.5× LMDB", []clause{
			res.atLeast("load-random", "throughput", "bbolt", 3, "bbolt"),
			res.atLeast("load-random", "throughput", "lmdb", 1.5, "lmdb"),
		}},
		{"load-sorted", "≥ 3× bbolt and ≥ 1.5× LMDB", []clause{
			res.atLeast("load-sorted", "throughput", "bbolt", 3, "bbolt"),
			res.atLeast("load-sorted", "throughput", "lmdb", 1.5, "lmdb"),
		}},
		{"commit-sync", "median ≤ 0.6× bbolt's and LMDB's, close to one bare fdatasync (taken as ≤ 1.5×)", []clause{
			res.atMost("commit-sync", "median", "bbolt", 0.6, "bbolt's"),
			res.atMost("commit-sync", "median", "lmdb", 0.6, "lmdb's"),
			res.atMost("commit-sync", "median", "bare", 1.5, "bare fdatasync"),
		}},
		{"batch", "≥ 2× bbolt's Batch throughput", []clause{
			res.atLeast("batch", "throughput", "bbolt", 2, "bbolt"),
		}},
		{"snapshot", "≥ 0.9× bare sendfile, ≥ 1.5× bbolt's Tx.WriteTo (MB/s)", []clause{
			res.atLeast("snapshot", "throughput", "bare", 0.9, "sendfile"),
			res.atLeast("snapshot", "throughput", "bbolt", 1.5, "bbolt"),
		}},
		{"space", "after load-random ≤ 0.8× bbolt's file; after deleting 90% ≤ 0.3× its full size", []clause{
			res.atMost("space", "after-load-random", "bbolt", 0.8, "bbolt's"),
			res.own("space", "shrink", func(v float64) bool { return v <= 0.3 }, "× full size", "≤ 0.3"),
		}},
		{"parallel get", fmt.Sprintf("scales ≥ 1.8× on 2 cores (here GOMAXPROCS %d)", res.Machine.GOMAXPROCS), []clause{
			res.own("get-random", "scaling", func(v float64) bool { return v >= 1.8 }, "×", "≥ 1.8"),
		}},
	}
	var out []TargetResult
	for _, t := range ts {
		verdict := Pass
		var parts []string
		for _, c := range t.clauses {
			switch {
			case !c.measured:
				if verdict == Pass {
					verdict = NA
				}
				parts = append(parts, "not measured ("+c.want+")")
			case c.pass:
				parts = append(parts, fmt.Sprintf("%s (%s) ✓", c.text, c.want))
			default:
				verdict = Miss
				parts = append(parts, fmt.Sprintf("%s (%s) ✗", c.text, c.want))
			}
		}
		out = append(out, TargetResult{Workload: t.workload, Target: t.text, Verdict: verdict, Detail: strings.Join(parts, "; ")})
	}
	return out
}

// trimFloat prints a bound without trailing zeros.
func trimFloat(v float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
