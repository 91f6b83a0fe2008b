package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// better says which way a metric improves.
type better int

const (
	higher  better = iota // throughput
	lower                 // latency, bytes
	neither               // informational (bytes streamed)
)

// metricSpec describes one reported figure.
type metricSpec struct {
	workload, metric, unit string
	better                 better
	// title labels the figure in tables and charts.
	title string
	// chart, if set, names the SVG file drawn for this figure.
	chart string
	// short, if set, puts the figure in the overview chart of ratios to
	// mapkv under this label ("|" breaks the line).
	short string
}

// catalog lists every figure the report shows, in order.
var catalog = []metricSpec{
	{"load-random", "throughput", "keys/s", higher, "load-random (10k/tx)", "load-random.svg", "load|random"},
	{"load-sorted", "throughput", "keys/s", higher, "load-sorted (10k/tx)", "load-sorted.svg", "load|sorted"},
	{"load-random-1k", "throughput", "keys/s", higher, "load-random (1k/tx)", "load-random-1k.svg", "load|1k/tx"},
	{"commit-sync", "median", "µs", lower, "commit-sync median", "commit-sync.svg", "commit-sync|median"},
	{"commit-sync", "p99", "µs", lower, "commit-sync p99", "", ""},
	{"batch", "throughput", "commits/s", higher, "batch (8 goroutines)", "batch.svg", "batch|8 writers"},
	{"get-random", "single", "gets/s", higher, "get-random, 1 goroutine", "get-random.svg", "get-random|1 goroutine"},
	{"get-random", "parallel", "gets/s", higher, "get-random, GOMAXPROCS goroutines", "get-random-parallel.svg", "get-random|parallel"},
	{"get-random", "scaling", "×", higher, "get-random parallel ÷ single", "", ""},
	{"get-random", "allocs", "allocs/op", lower, "get-random heap allocs per get", "", ""},
	{"scan", "throughput", "keys/s", higher, "scan", "scan.svg", "scan|"},
	{"scan", "sorted", "keys/s", higher, "scan of the load-sorted file", "", ""},
	{"mixed", "reader", "gets/s", higher, "mixed: reader throughput", "mixed-reader.svg", "mixed|readers"},
	{"mixed", "writer-median", "µs", lower, "mixed: writer commit median", "mixed-writer.svg", ""},
	{"mixed", "writer-p99", "µs", lower, "mixed: writer commit p99", "", ""},
	{"snapshot", "throughput", "MB/s", higher, "snapshot", "snapshot.svg", "snapshot|"},
	{"snapshot", "bytes", "MB", neither, "snapshot bytes streamed", "", ""},
	{"space", "after-load-random", "MB", lower, "space after load-random", "space.svg", "space|load-random"},
	{"space", "after-load-sorted", "MB", lower, "space after load-sorted", "", ""},
	{"space", "after-delete-90", "MB", lower, "space after deleting 90%", "", ""},
	{"space", "shrink", "×", lower, "space after delete ÷ after load", "", ""},
}

// ratioed reports whether comparing engines on s by ratio makes sense: not
// for informational figures, ratios (scaling, shrink), or allocation counts,
// which may be zero.
func (s metricSpec) ratioed() bool {
	return s.better != neither && s.unit != "×" && s.unit != "allocs/op"
}

// columns returns the engines that appear in res, in canonical order, then
// "bare" if any baseline ran.
func (res *Results) columns() []string {
	var cols []string
	for _, e := range res.Engines {
		cols = append(cols, e.Name)
	}
	for _, m := range res.Measurements {
		if m.Engine == "bare" {
			return append(cols, "bare")
		}
	}
	return cols
}

// specs returns the catalog entries for the workloads that ran.
func (res *Results) specs() []metricSpec {
	var out []metricSpec
	for _, s := range catalog {
		if slices.Contains(res.Workloads, s.workload) {
			out = append(out, s)
		}
	}
	return out
}

// advantage returns how many times better mapkv's median is than engine's
// for spec (>1: mapkv better), and false if either is missing.
func (res *Results) advantage(s metricSpec, engine string) (float64, bool) {
	return res.advantageOf("mapkv", s, engine)
}

// advantageOf returns how many times better ref's median is than engine's
// for spec (>1: ref better), and false if either is missing.
func (res *Results) advantageOf(ref string, s metricSpec, engine string) (float64, bool) {
	if !s.ratioed() {
		return 0, false
	}
	m, ok1 := res.summarize(s.workload, s.metric, ref)
	o, ok2 := res.summarize(s.workload, s.metric, engine)
	if !ok1 || !ok2 || m.median <= 0 || o.median <= 0 {
		return 0, false
	}
	if s.better == higher {
		return m.median / o.median, true
	}
	return o.median / m.median, true
}

// cellNote returns what to print for a figure that was not measured.
func (res *Results) cellNote(workload, engine string) string {
	for _, n := range res.Errors {
		if n.Workload == workload && n.Engine == engine {
			return "error"
		}
	}
	for _, n := range res.NotApplicable {
		if n.Workload == workload && n.Engine == engine {
			return "n/a"
		}
	}
	return "–"
}

// Markdown renders the report: machine, figures, ratios to mapkv, targets,
// notes and errors.
func (res *Results) Markdown() string {
	var b strings.Builder
	cols := res.columns()
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("# kvbench results\n\n")
	p("n = %d pairs (%d-byte random keys, %d-byte random values), %d repetition(s), engines interleaved. ",
		res.Config.N, KeySize, ValueSize, res.Config.Count)
	p("Run %s, took %s.\n\n", res.Started.Format("2006-01-02 15:04 MST"), res.Finished.Sub(res.Started).Round(1e9))
	m := res.Machine
	p("Machine: %d CPUs (GOMAXPROCS %d), %s; memory %s; Linux %s; %s; disk %s.\n\n",
		m.CPUs, m.GOMAXPROCS, m.CPUModel, m.MemTotal, m.Kernel, m.GoVersion, m.Disk)
	if m.OtherCPU >= 0 {
		p("Other processes used %.0f%% of the CPUs during the run (load average %s before, %s after)",
			100*m.OtherCPU, m.LoadBefore, m.LoadAfter)
		if m.OtherCPU > 0.05 {
			p(": **the machine was busy, so these figures are noisier than they should be**")
		}
		p(".\n\n")
	}
	p("Engines: ")
	for i, e := range res.Engines {
		if i > 0 {
			p("; ")
		}
		p("**%s** %s", e.Name, e.Version)
	}
	p(".\n\n")

	p("## Figures\n\n")
	p("Median over the repetitions, with the range (min–max) below it. MB = 10⁶ bytes. ")
	p("`bare` is the floor the workload is measured against, where it has one.\n\n")
	p("| workload | unit |")
	for _, c := range cols {
		p(" %s |", c)
	}
	p("\n| --- | --- |%s\n", strings.Repeat(" ---: |", len(cols)))
	for _, s := range res.specs() {
		arrow := map[better]string{higher: " ↑", lower: " ↓", neither: ""}[s.better]
		p("| %s | %s%s |", s.title, s.unit, arrow)
		for _, c := range cols {
			sm, ok := res.summarize(s.workload, s.metric, c)
			switch {
			case !ok && c == "bare":
				p(" |")
			case !ok:
				p(" %s |", res.cellNote(s.workload, c))
			case sm.n == 1 || sm.min == sm.max:
				p(" %s |", formatValue(sm.median))
			default:
				p(" %s<br><sub>%s–%s</sub> |", formatValue(sm.median), formatValue(sm.min), formatValue(sm.max))
			}
		}
		p("\n")
	}
	p("\n↑ higher is better, ↓ lower is better.\n\n")

	if slices.ContainsFunc(res.Engines, func(e EngineInfo) bool { return e.Name == "mapkv" }) {
		p("## mapkv's advantage\n\n")
		p("How many times better mapkv's median is than each engine's (its throughput ÷ theirs, or their latency or size ÷ mapkv's): above 1 mapkv is ahead, below 1 behind.\n\n")
		p("| workload |")
		for _, c := range cols {
			p(" %s |", c)
		}
		p("\n| --- |%s\n", strings.Repeat(" ---: |", len(cols)))
		for _, s := range res.specs() {
			if !s.ratioed() {
				continue
			}
			p("| %s |", s.title)
			for _, c := range cols {
				if c == "mapkv" {
					p(" 1 |")
					continue
				}
				if a, ok := res.advantage(s, c); ok {
					p(" %s× |", formatRatio(a))
				} else {
					p(" |")
				}
			}
			p("\n")
		}
		p("\n")
	}

	p("## Targets\n\n")
	p("From the benchmark issue: mapkv against the named peers on this run, on medians.")
	if !slices.ContainsFunc(res.Engines, func(e EngineInfo) bool { return e.Name == "mapkv" }) {
		p(" mapkv did not take part in this run, so none can be checked.")
	}
	p("\n\n")
	p("| workload | target | verdict | measured |\n| --- | --- | --- | --- |\n")
	for _, t := range res.CheckTargets() {
		p("| %s | %s | **%s** | %s |\n", t.Workload, t.Target, t.Verdict, t.Detail)
	}
	p("\n")

	p("## Charts\n\n")
	p("![mapkv against the others](summary.svg)\n\n")
	for _, s := range res.specs() {
		if s.chart != "" {
			p("![%s](%s)\n", s.title, s.chart)
		}
	}
	p("\n")

	p("## Workloads\n\n")
	for _, w := range workloads {
		if slices.Contains(res.Workloads, w.name) {
			p("- **%s**: %s.", w.name, w.desc)
			if bl, ok := res.Baselines[w.name]; ok {
				p(" Baseline: %s.", bl)
			}
			p("\n")
		}
	}
	p("\nHow each engine does what the others do differently:\n\n")
	for _, e := range res.Engines {
		keys := make([]string, 0, len(e.Notes))
		for k := range e.Notes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p("- %s, %s: %s.\n", e.Name, k, e.Notes[k])
		}
	}
	for _, n := range res.NotApplicable {
		p("- %s, %s: not applicable: %s.\n", n.Engine, n.Workload, n.Text)
	}
	if len(res.Errors) > 0 {
		p("\n## Errors\n\n")
		for _, n := range res.Errors {
			p("- repetition %d, %s, %s: %s\n", n.Rep, n.Workload, n.Engine, n.Text)
		}
	}
	return b.String()
}

// WriteReport writes RESULTS.md, results.json, summary.svg and one SVG per
// key figure into dir, creating it if needed.
func (res *Results) WriteReport(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	res.Targets = res.CheckTargets()
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"RESULTS.md":   []byte(res.Markdown()),
		"results.json": append(js, '\n'),
		"summary.svg":  []byte(res.summaryChart()),
	}
	for _, s := range res.specs() {
		if s.chart != "" {
			files[s.chart] = []byte(res.barChart(s))
		}
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ReadResults loads the results.json that WriteReport wrote, so that the
// report can be redrawn without measuring again.
func ReadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &res, nil
}

// formatValue prints v with three significant digits and a k/M/G suffix.
func formatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return sig3(v/1e9) + "G"
	case a >= 1e6:
		return sig3(v/1e6) + "M"
	case a >= 1e4:
		return sig3(v/1e3) + "k"
	}
	return sig3(v)
}

// sig3 prints v with three significant digits (more for integers ≥ 1000).
func sig3(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// formatRatio prints a ratio with two decimals, or three significant digits
// when it is large.
func formatRatio(r float64) string {
	if r >= 10 {
		return sig3(r)
	}
	return fmt.Sprintf("%.2f", r)
}

// formatBytes prints a byte count in binary units.
func formatBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.0f %s", v, units[i])
}
