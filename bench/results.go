package bench

import (
	"math"
	"slices"
	"time"
)

// Measurement is one figure from one run of one workload on one engine.
type Measurement struct {
	Rep      int     `json:"rep"`
	Workload string  `json:"workload"`
	Engine   string  `json:"engine"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	// Samples holds the individual observations behind Value where there
	// are many (per-commit latencies, in the Unit of Value).
	Samples []float64 `json:"samples,omitempty"`
}

// Note records a workload that did not apply to an engine, or failed on it.
type Note struct {
	Rep      int    `json:"rep"`
	Workload string `json:"workload"`
	Engine   string `json:"engine"`
	Text     string `json:"text"`
}

// EngineInfo names an engine that took part, its version and the mechanisms
// it used where they differ between engines.
type EngineInfo struct {
	Name    string            `json:"name"`
	Version string            `json:"version"`
	Notes   map[string]string `json:"notes,omitempty"`
}

// Results is everything one invocation measured.
type Results struct {
	Config       Config        `json:"config"`
	Machine      Machine       `json:"machine"`
	Started      time.Time     `json:"started"`
	Finished     time.Time     `json:"finished"`
	Engines      []EngineInfo  `json:"engines"`
	Workloads    []string      `json:"workloads"`
	Measurements []Measurement `json:"measurements"`
	// NotApplicable lists workloads an engine has no equivalent for.
	NotApplicable []Note `json:"not_applicable,omitempty"`
	// Errors lists workloads that failed; their figures are missing.
	Errors []Note `json:"errors,omitempty"`
	// Baselines says what the "bare" column measured, per workload.
	Baselines map[string]string `json:"baselines,omitempty"`
	// Targets holds the targets as checked when the report was
	// written.
	Targets []TargetResult `json:"targets,omitempty"`
}

// summary is the spread of one metric over the repetitions.
type summary struct {
	median, min, max float64
	n                int
}

// values returns the per-repetition values of one metric for one engine.
func (res *Results) values(workload, metric, engine string) []float64 {
	var v []float64
	for _, m := range res.Measurements {
		if m.Workload == workload && m.Metric == metric && m.Engine == engine {
			v = append(v, m.Value)
		}
	}
	return v
}

// summarize returns the median and range of one metric for one engine, and
// false if it was never measured.
func (res *Results) summarize(workload, metric, engine string) (summary, bool) {
	v := res.values(workload, metric, engine)
	if len(v) == 0 {
		return summary{}, false
	}
	slices.Sort(v)
	return summary{median: median(v), min: v[0], max: v[len(v)-1], n: len(v)}, true
}

// median returns the median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile returns the p-th percentile (0..100) of sorted values by the
// nearest-rank method.
func percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}
