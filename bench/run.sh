#!/usr/bin/env bash
# run.sh installs what kvbench needs (LMDB's C library and headers, a C
# compiler for cgo) and runs it from this directory, passing every argument
# through: ./run.sh -n 200000 -count 1 -engines mapkv,bbolt
# Results go to ./results (relative to bench/) unless -out says otherwise.
set -euo pipefail
cd "$(dirname "$0")"

need=()
dpkg -s liblmdb-dev >/dev/null 2>&1 || need+=(liblmdb-dev)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "run.sh: installing ${need[*]}" >&2
	$sudo apt-get update
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${need[@]}"
fi
command -v go >/dev/null 2>&1 || { echo "run.sh: go is not on PATH (need Go 1.26)" >&2; exit 1; }

bin="$(mktemp -d)/kvbench"
trap 'rm -rf "$(dirname "$bin")"' EXIT
# -mod=mod lets a checkout whose root module gained requirements since
# bench/go.mod was last tidied still build.
CGO_ENABLED=1 go build -mod=mod -o "$bin" ./cmd/kvbench
"$bin" "$@"
