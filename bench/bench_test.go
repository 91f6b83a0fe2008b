package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunAllWorkloads runs every workload against every compiled-in engine
// at a tiny size, so that the harness itself is exercised end to end: each
// engine must produce every figure (or be marked not applicable), and the
// report files must come out well formed. It asserts nothing about speed.
func TestRunAllWorkloads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every engine on disk")
	}
	res, err := Run(Config{N: 2000, Count: 1, Dir: t.TempDir(), Prefault: -1, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Errors {
		t.Errorf("%s on %s failed: %s", e.Workload, e.Engine, e.Text)
	}
	na := map[string]bool{}
	for _, n := range res.NotApplicable {
		na[n.Workload+"/"+n.Engine] = true
	}
	for _, s := range catalog {
		for _, e := range Engines() {
			if na[s.workload+"/"+e] {
				continue
			}
			v := res.values(s.workload, s.metric, e)
			if len(v) != 1 {
				t.Errorf("%s %s on %s: %d values, want 1", s.workload, s.metric, e, len(v))
				continue
			}
			if math.IsNaN(v[0]) || math.IsInf(v[0], 0) || v[0] < 0 {
				t.Errorf("%s %s on %s = %v", s.workload, s.metric, e, v[0])
			}
		}
	}
	for _, w := range []string{"commit-sync", "snapshot"} {
		if _, ok := res.summarize(w, catalogFirst(w), "bare"); !ok {
			t.Errorf("%s: no bare baseline", w)
		}
	}

	out := t.TempDir()
	if err := res.WriteReport(out); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Figures", "## Targets", "| load-random (10k/tx) |", "summary.svg"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("RESULTS.md lacks %q", want)
		}
	}
	js, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if len(back.Measurements) != len(res.Measurements) || len(back.Targets) == 0 {
		t.Errorf("results.json holds %d measurements and %d targets, want %d and some",
			len(back.Measurements), len(back.Targets), len(res.Measurements))
	}
	svgs, _ := filepath.Glob(filepath.Join(out, "*.svg"))
	if len(svgs) < 2 {
		t.Fatalf("only %d SVG files", len(svgs))
	}
	for _, f := range svgs {
		checkXML(t, f)
	}
}

// catalogFirst returns the first metric the catalog lists for workload w.
func catalogFirst(w string) string {
	for _, s := range catalog {
		if s.workload == w {
			return s.metric
		}
	}
	return ""
}

// checkXML fails t unless the file at path parses as XML with an svg root.
func checkXML(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
			return
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("%s: root element %q", filepath.Base(path), root)
	}
}

func TestDataset(t *testing.T) {
	d := newDataset(5000, 7)
	if !bytes.Equal(newDataset(5000, 7).randKeys, d.randKeys) {
		t.Error("same seed gave different keys")
	}
	seen := map[string]bool{}
	for i := range d.n {
		seen[string(record(d.randKeys, i, KeySize))] = true
	}
	if len(seen) != d.n {
		t.Errorf("%d distinct keys of %d", len(seen), d.n)
	}
	val := map[string]string{}
	for i := range d.n {
		val[string(record(d.randKeys, i, KeySize))] = string(record(d.randVals, i, ValueSize))
	}
	for i := range d.n {
		k := record(d.sortedKeys, i, KeySize)
		if i > 0 && bytes.Compare(record(d.sortedKeys, i-1, KeySize), k) >= 0 {
			t.Fatalf("sorted keys out of order at %d", i)
		}
		if val[string(k)] != string(record(d.sortedVals, i, ValueSize)) {
			t.Fatalf("sorted pair %d has the wrong value", i)
		}
		if !seen[string(record(d.probeKeys, i, KeySize))] {
			t.Fatalf("probe key %d is not a loaded key", i)
		}
	}
}

func TestStats(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if got := median(s); got != 5.5 {
		t.Errorf("median = %v", got)
	}
	if got := median(s[:3]); got != 2 {
		t.Errorf("median of 3 = %v", got)
	}
	if got := percentile(s, 99); got != 10 {
		t.Errorf("p99 = %v", got)
	}
	if got := percentile(s, 50); got != 5 {
		t.Errorf("p50 = %v", got)
	}
	for v, want := range map[float64]string{1234567: "1.23M", 25300: "25.3k", 4321: "4321", 0.5: "0.500", 0: "0"} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestTargets(t *testing.T) {
	res := &Results{Workloads: Workloads()}
	add := func(w, m, e string, v float64) {
		res.Measurements = append(res.Measurements, Measurement{Workload: w, Metric: m, Engine: e, Value: v})
	}
	add("batch", "throughput", "mapkv", 3000)
	add("batch", "throughput", "bbolt", 1000)
	add("scan", "throughput", "mapkv", 10)
	add("scan", "throughput", "bbolt", 10)
	add("scan", "throughput", "lmdb", 5)
	verdicts := map[string]string{}
	for _, r := range res.CheckTargets() {
		verdicts[r.Workload] = r.Verdict
	}
	want := map[string]string{"batch": Pass, "scan": Miss, "load-sorted": NA}
	for w, v := range want {
		if verdicts[w] != v {
			t.Errorf("%s: verdict %s, want %s", w, verdicts[w], v)
		}
	}
}

// testLog sends the harness's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
