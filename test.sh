#!/usr/bin/env bash
# The test command of the README and of CI: the whole test suite with the
# race detector, then every fuzz target for a short time (FUZZTIME, 10s
# each by default; RELIABILITY.md says how to fuzz for long).
set -euo pipefail
cd "$(dirname "$0")"
go test -race ./...
fuzztime="${FUZZTIME:-10s}"
fuzz() { # package target
	echo "fuzz $2 ($fuzztime)"
	go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "$1" > /tmp/mapkv-fuzz.log 2>&1 || {
		cat /tmp/mapkv-fuzz.log
		exit 1
	}
	tail -1 /tmp/mapkv-fuzz.log
}
fuzz . FuzzOpen
fuzz . FuzzOpenSealed
fuzz ./page FuzzNode
fuzz ./btree FuzzTree
fuzz ./cmd/mapkv FuzzBucketPath
fuzz ./cmd/mapkv FuzzDumpBytes
fuzz ./cmd/mapkv FuzzDumpReader
echo "tests and fuzzing passed"
