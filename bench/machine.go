package bench

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	MemTotal   string `json:"mem_total"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go_version"`
	// Disk describes the file system holding the scratch directory.
	Disk string `json:"disk"`
	// LoadBefore and LoadAfter are /proc/loadavg at the start and end.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
	// OtherCPU is the share of the machine's CPU time (0..1) that other
	// processes used while the benchmark ran (-1: unknown). A figure well
	// above zero means the results were measured on a busy machine.
	OtherCPU float64 `json:"other_cpu"`
}

// cpuMeter measures the CPU time other processes use over an interval:
// all busy time from /proc/stat minus this process's own (getrusage).
type cpuMeter struct {
	busy0, own0 time.Duration
	start       time.Time
}

func startCPUMeter() cpuMeter {
	return cpuMeter{busy0: machineBusy(), own0: ownCPU(), start: time.Now()}
}

// otherShare returns the share of all CPUs' time since start that other
// processes used, or -1 if /proc/stat is unreadable.
func (m cpuMeter) otherShare() float64 {
	busy := machineBusy() - m.busy0
	own := ownCPU() - m.own0
	wall := time.Since(m.start) * time.Duration(runtime.NumCPU())
	if m.busy0 < 0 || wall <= 0 {
		return -1
	}
	return math.Max(0, float64(busy-own)/float64(wall))
}

// machineBusy returns the CPU time all CPUs spent not idle since boot, from
// the first line of /proc/stat (user nice system idle iowait irq softirq
// steal, in clock ticks of 1/100 s), or -1.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:8] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// ownCPU returns the user and system CPU time of this process.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// describeMachine gathers what can be read cheaply from /proc and /sys.
func describeMachine(scratch string) Machine {
	m := Machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		CPUModel:   procField("/proc/cpuinfo", "model name"),
		MemTotal:   memTotal(),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Disk = describeDisk(scratch)
	m.LoadBefore = loadAvg()
	return m
}

// memTotal returns the machine's memory from /proc/meminfo, e.g. "24 GiB".
func memTotal() string {
	v := procField("/proc/meminfo", "MemTotal")
	kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64)
	if err != nil {
		return v
	}
	return formatBytes(kb * 1024)
}

// procField returns the value of the first "name: value" line in path.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// describeDisk names the device and file system that hold dir (longest
// mount point prefix in /proc/mounts), and whether the kernel calls the
// device rotational.
func describeDisk(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return ""
	}
	var dev, mnt, fs string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if (abs == f[1] || strings.HasPrefix(abs, strings.TrimSuffix(f[1], "/")+"/")) && len(f[1]) >= len(mnt) {
			dev, mnt, fs = f[0], f[1], f[2]
		}
	}
	if dev == "" {
		return ""
	}
	desc := dev + " (" + fs + " on " + mnt
	if r, err := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/queue/rotational"); err == nil {
		if strings.TrimSpace(string(r)) == "0" {
			desc += ", non-rotational"
		} else {
			desc += ", reported rotational"
		}
	}
	var st syscall.Statfs_t
	if syscall.Statfs(abs, &st) == nil {
		desc += ", " + formatBytes(float64(st.Blocks)*float64(st.Bsize)) + " total"
	}
	return desc + ")"
}
