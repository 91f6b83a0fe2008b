//go:build !unix

package mapkv

import "time"

// cpuTime is 0 where getrusage is missing: the load benchmarks then
// report no CPU time.
func cpuTime() time.Duration { return 0 }
