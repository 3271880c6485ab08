#!/usr/bin/env bash
# Runs every benchmark of `tierdesk bench` in release mode and prints the figures.
# Usage: benches/run.sh [TRANSACTIONS]   (default 1,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
cargo build --release --quiet
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
./target/release/tierdesk demo --export "$dir/data" --transactions "$n" >/dev/null
for what in import score commissions tui sync workflow; do
  echo "== bench $what ($n transactions)"
  ./target/release/tierdesk bench "$what" --transactions "$n" --dir "$dir/data" || echo "(bench $what failed)"
done
