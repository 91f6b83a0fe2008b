//go:build race

package mapkv_test

// raceEnabled reports a build with the race detector, which adds
// allocations of its own (and drops sync.Pool items at random).
const raceEnabled = true
