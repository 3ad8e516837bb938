#!/usr/bin/env bash
# Times a cold build of the Kubernetes payload (make payload) into a scratch directory,
# with an empty Go build cache: every package, the standard library's included, is
# compiled again. The module cache is kept (downloads are not build time; hack/setup.sh
# and `go mod download` fill it). Prints the figure beside the aim of issue 12.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "bench-build: cold payload build into $scratch (log: $scratch/log), about 8 minutes on 2 cores"
start=$(date +%s)
if ! GOCACHE="$scratch/cache" make -C payload GO="$GO" BIN="$scratch/bin" >"$scratch/log" 2>&1; then
  tail -30 "$scratch/log" >&2
  echo "bench-build: the cold payload build failed" >&2
  exit 1
fi
secs=$(( $(date +%s) - start ))
verdict="met"
if [ "$secs" -ge 480 ]; then verdict="NOT met"; fi
printf '%-58s %-36s aim: %s (%s)\n' "cold payload build (empty Go build cache):" "${secs} s ($(du -sh "$scratch/bin" | cut -f1) of binaries)" "under 480 s" "$verdict"
