package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart geometry, in SVG user units.
const (
	chartW      = 720
	chartH      = 380
	chartLeft   = 70
	chartRight  = 20
	chartTop    = 58
	chartBottom = 64
	summaryW    = 940
)

// engineColor gives each engine a fixed colour; mapkv stands out.
var engineColor = map[string]string{
	"mapkv":  "#d1495b",
	"bbolt":  "#00798c",
	"lmdb":   "#edae49",
	"badger": "#66a182",
	"pebble": "#2e4057",
	"bare":   "#9a9a9a",
}

func colorOf(engine string) string {
	if c, ok := engineColor[engine]; ok {
		return c
	}
	return "#777777"
}

// svgDoc accumulates one SVG document.
type svgDoc struct{ b strings.Builder }

// newSVG starts a document of the given width and chartH high.
func newSVG(width float64, title, subtitle string) *svgDoc {
	d := &svgDoc{}
	d.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%d" viewBox="0 0 %.0f %d" font-family="Helvetica, Arial, sans-serif">`+"\n",
		width, chartH, width, chartH)
	d.f(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	d.text(width/2, 24, 16, "middle", "bold", title)
	d.text(width/2, 42, 12, "middle", "normal", subtitle)
	return d
}

func (d *svgDoc) f(format string, args ...any) { fmt.Fprintf(&d.b, format, args...) }

func (d *svgDoc) text(x, y float64, size int, anchor, weight, s string) {
	d.f(`<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" font-weight="%s" fill="#222">%s</text>`+"\n",
		x, y, size, anchor, weight, html.EscapeString(s))
}

func (d *svgDoc) line(x1, y1, x2, y2 float64, stroke string, width float64) {
	d.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"/>`+"\n", x1, y1, x2, y2, stroke, width)
}

func (d *svgDoc) rect(x, y, w, h float64, fill, tooltip string) {
	d.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
		x, y, w, h, fill, html.EscapeString(tooltip))
}

func (d *svgDoc) String() string { return d.b.String() + "</svg>\n" }

// niceStep returns a round tick step so that about n ticks cover max.
func niceStep(max float64, n int) float64 {
	raw := max / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// barChart draws one figure: a bar per engine at its median, with a whisker
// over the range of the repetitions and the median printed above.
func (res *Results) barChart(s metricSpec) string {
	type bar struct {
		name string
		sm   summary
	}
	var bars []bar
	top := 0.0
	for _, c := range res.columns() {
		if sm, ok := res.summarize(s.workload, s.metric, c); ok {
			bars = append(bars, bar{c, sm})
			top = math.Max(top, sm.max)
		}
	}
	dir := map[better]string{higher: "higher is better", lower: "lower is better", neither: ""}[s.better]
	d := newSVG(chartW, s.title, fmt.Sprintf("%s, %s; median of %d run(s), whisker = min–max; n = %d",
		s.unit, dir, res.Config.Count, res.Config.N))
	plotW := float64(chartW - chartLeft - chartRight)
	plotH := float64(chartH - chartTop - chartBottom)
	baseY := float64(chartTop) + plotH
	if len(bars) == 0 || top <= 0 {
		d.text(chartW/2, chartH/2, 14, "middle", "normal", "no data")
		return d.String()
	}
	step := niceStep(top, 5)
	ymax := math.Ceil(top/step) * step
	y := func(v float64) float64 { return baseY - v/ymax*plotH }
	for t := 0.0; t <= ymax*1.0001; t += step {
		d.line(chartLeft, y(t), chartLeft+plotW, y(t), "#e4e4e4", 1)
		d.text(chartLeft-6, y(t)+4, 11, "end", "normal", formatValue(t))
	}
	slot := plotW / float64(len(bars))
	bw := math.Min(slot*0.6, 90)
	for i, br := range bars {
		cx := chartLeft + slot*(float64(i)+0.5)
		tip := fmt.Sprintf("%s: median %s %s (min %s, max %s)", br.name,
			formatValue(br.sm.median), s.unit, formatValue(br.sm.min), formatValue(br.sm.max))
		d.rect(cx-bw/2, y(br.sm.median), bw, baseY-y(br.sm.median), colorOf(br.name), tip)
		if br.sm.max > br.sm.min {
			d.line(cx, y(br.sm.min), cx, y(br.sm.max), "#222", 1.2)
			d.line(cx-6, y(br.sm.min), cx+6, y(br.sm.min), "#222", 1.2)
			d.line(cx-6, y(br.sm.max), cx+6, y(br.sm.max), "#222", 1.2)
		}
		d.text(cx, math.Min(y(br.sm.median), y(br.sm.max))-6, 12, "middle", "bold", formatValue(br.sm.median))
		label := br.name
		if label == "bare" {
			label = "bare " + map[string]string{"commit-sync": "fdatasync", "snapshot": "sendfile"}[s.workload]
		}
		d.text(cx, baseY+18, 13, "middle", "normal", label)
	}
	d.line(chartLeft, baseY, chartLeft+plotW, baseY, "#222", 1)
	return d.String()
}

// summaryChart draws, for each key figure, how many times better mapkv is
// than each other engine, on a log scale around 1 (bars up: mapkv ahead).
// Without mapkv in the run, the first engine is the reference.
func (res *Results) summaryChart() string {
	ref := ""
	var peers []string
	for _, e := range res.Engines {
		if e.Name == "mapkv" {
			ref = "mapkv"
		}
	}
	for _, e := range res.Engines {
		if ref == "" {
			ref = e.Name
		}
		if e.Name != ref {
			peers = append(peers, e.Name)
		}
	}
	var specs []metricSpec
	for _, s := range res.specs() {
		if s.short != "" {
			specs = append(specs, s)
		}
	}
	width := float64(summaryW)
	d := newSVG(width, ref+" against the others",
		fmt.Sprintf("how many times better %s is (log scale; above 1: %s ahead); medians of %d run(s), n = %d",
			ref, ref, res.Config.Count, res.Config.N))
	plotW := width - chartLeft - chartRight
	plotH := float64(chartH - chartTop - chartBottom - 18)
	if len(peers) == 0 || len(specs) == 0 {
		d.text(width/2, chartH/2, 14, "middle", "normal", "no peers to compare")
		return d.String()
	}
	// The scale spans whole powers of two around every ratio.
	lo, hi := 0.0, 0.0
	for _, s := range specs {
		for _, p := range peers {
			if a, ok := res.advantageOf(ref, s, p); ok {
				l := math.Log2(a)
				lo, hi = math.Min(lo, math.Floor(l)), math.Max(hi, math.Ceil(l))
			}
		}
	}
	if lo == hi {
		lo, hi = -1, 1
	}
	y := func(a float64) float64 { return float64(chartTop) + (hi-math.Log2(a))/(hi-lo)*plotH }
	for e := lo; e <= hi; e++ {
		v := math.Pow(2, e)
		label := trimFloat(v) + "×"
		if v < 1 {
			label = "1/" + trimFloat(1/v) + "×"
		}
		d.line(chartLeft, y(v), chartLeft+plotW, y(v), "#e4e4e4", 1)
		d.text(chartLeft-6, y(v)+4, 11, "end", "normal", label)
	}
	group := plotW / float64(len(specs))
	bw := math.Min(group*0.8/float64(len(peers)), 28)
	for i, s := range specs {
		gx := chartLeft + group*float64(i) + (group-bw*float64(len(peers)))/2
		for j, p := range peers {
			a, ok := res.advantageOf(ref, s, p)
			if !ok {
				continue
			}
			// A ratio of about 1 still gets a visible sliver.
			y0, y1 := y(1), y(a)
			h := math.Max(math.Abs(y1-y0), 2)
			top := y0 - h
			if y1 > y0 {
				top = y0
			}
			d.rect(gx+bw*float64(j), top, bw-2, h,
				colorOf(p), fmt.Sprintf("%s: %s %s× better than %s", s.title, ref, formatRatio(a), p))
		}
		line1, line2, _ := strings.Cut(s.short, "|")
		cx := chartLeft + group*(float64(i)+0.5)
		d.text(cx, float64(chartTop)+plotH+15, 11, "middle", "normal", line1)
		d.text(cx, float64(chartTop)+plotH+28, 11, "middle", "normal", line2)
	}
	d.line(chartLeft, y(1), chartLeft+plotW, y(1), "#222", 1.2)
	// Legend.
	lx := float64(chartLeft)
	for _, p := range peers {
		d.rect(lx, chartH-22, 12, 12, colorOf(p), p)
		d.text(lx+16, chartH-12, 12, "start", "normal", p)
		lx += 90
	}
	d.line(lx, chartH-16, lx+14, chartH-16, "#222", 1.2)
	d.text(lx+18, chartH-12, 12, "start", "normal", ref+" = 1")
	return d.String()
}
