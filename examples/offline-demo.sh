#!/usr/bin/env bash
# Try gomirror with no internet access: the fake upstream from the test suite
# (a real HTTP server speaking the module proxy, index and checksum-database
# protocols, signed with a test key) stands in for proxy.golang.org,
# index.golang.org and sum.golang.org.
#
#   examples/offline-demo.sh [WORKDIR]
#
# It starts the fake upstream, writes WORKDIR/sync.toml (a copy of the shipped
# sync.toml pointed at it), runs `gomirror sync` and `gomirror status`, and,
# if `go` is installed, downloads a module from the mirror with the real go
# command (GOPROXY=file://…, checksums verified through the mirror).
#
# BIN_DIR=target/debug skips the release build and uses existing binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
work=$(cd "$work" && pwd)

if [ -z "${BIN_DIR:-}" ]; then
    cargo build --release --bin gomirror --example fake-upstream
    BIN_DIR=target/release
fi
gomirror="$BIN_DIR/gomirror"
fake="$BIN_DIR/examples/fake-upstream"

"$fake" --modules 20 --versions 3 --filler 5000 > "$work/upstream.json" &
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true' EXIT
# The fake prints one JSON line once it is listening.
for _ in $(seq 1 600); do
    grep -q '}' "$work/upstream.json" 2>/dev/null && break
    sleep 0.05
done
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$work/upstream.json"; }
proxy=$(field proxy)
index=$(field index)
sumdb_url=$(field sumdb_url)
sumdb_key=$(field sumdb_key)
echo "fake upstream: $proxy"

# The shipped sync.toml, pointed at the fake upstream, mirroring everything
# (the vulnerability database off: vuln.go.dev is not the fake's).
sed -e "s|^proxy = .*|proxy = \"$proxy\"|" \
    -e "s|^index = .*|index = \"$index\"|" \
    -e "s|^index_since = .*||" \
    -e "s|^key = .*|key = \"$sumdb_key\"|" \
    -e "/^\[vulndb\]/,\$ s|^url = .*|url = \"off\"|" \
    -e "s|^url = \"https.*|url = \"$sumdb_url\"|" \
    -e "s|^include = .*|include = [\"*\"]|" \
    -e "s|^seed = .*|seed = []|" \
    sync.toml > "$work/sync.toml"

"$gomirror" -c "$work/sync.toml" sync
"$gomirror" -c "$work/sync.toml" status

if command -v go >/dev/null 2>&1; then
    echo "go mod download from the mirror (file://), verified through its checksum database:"
    env -i PATH="$PATH" HOME="$work/gohome" GOPATH="$work/gohome/go" GOCACHE="$work/gohome/cache" \
        GOFLAGS=-modcacherw GOTOOLCHAIN=local GOPROXY="file://$work/mirror" GOSUMDB="$sumdb_key" \
        go mod download -json example.com/gen/m0@latest
fi
echo "mirror: $work/mirror"
