#!/usr/bin/env bash
# The test command of the README and of CI: the whole test suite with the
# race detector, a build of the library for other platforms, then every
# fuzz target for a fixed number of inputs (a few seconds each;
# FUZZSCALE=10 runs ten times as many). Counts rather
# than durations: a time-limited fuzz run can end on a slow input and
# report "context deadline exceeded" as a failure. RELIABILITY.md says how
# to fuzz for long.
set -euo pipefail
cd "$(dirname "$0")"
go test -race ./...
# The library keeps compiling where it is cheap to (README, platforms):
# 32-bit Linux, the BSDs' and macOS's Unix paths, Windows' stubs.
for target in linux/386 freebsd/amd64 darwin/arm64 windows/amd64; do
	echo "build for $target"
	GOOS="${target%/*}" GOARCH="${target#*/}" go build . ./mmap ./page ./btree ./snapshot
done
scale="${FUZZSCALE:-1}"
fuzz() { # package target inputs
	n=$(($3 * scale))
	echo "fuzz $2 ($n inputs)"
	go test -run '^$' -fuzz "^$2\$" -fuzztime "${n}x" -fuzzminimizetime 100x "$1" > /tmp/mapkv-fuzz.log 2>&1 || {
		cat /tmp/mapkv-fuzz.log
		exit 1
	}
	tail -1 /tmp/mapkv-fuzz.log
}
fuzz . FuzzOpen 3000
fuzz . FuzzOpenSealed 3000
fuzz . FuzzLogReplay 2000
fuzz ./page FuzzNode 100000
fuzz ./btree FuzzTree 30000
fuzz ./cmd/mapkv FuzzBucketPath 50000
fuzz ./cmd/mapkv FuzzDumpBytes 50000
fuzz ./cmd/mapkv FuzzDumpReader 50000
echo "tests and fuzzing passed"
