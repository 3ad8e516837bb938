#!/usr/bin/env bash
# Reproducibility check of the image bundle and the node image: builds both from two git
# worktrees of HEAD at different paths (make images, then imager node; no Docker needed)
# and compares the archives' sha256, the image digests and payload/images.lock, and that
# each worktree is still clean afterwards (a build must not rewrite the lock). The Go build
# cache is shared, so after one payload build each worktree takes a minute or two.
# Usage: hack/images-repro.sh   (REPRO_DIR=/tmp/x to choose where the worktrees go; KEEP=1 keeps them)
set -euo pipefail

root=$(git rev-parse --show-toplevel)
cd "$root"
commit=$(git rev-parse HEAD)
dir=${REPRO_DIR:-$(mktemp -d /tmp/plinth-repro.XXXXXX)}
mkdir -p "$dir"
GO=${GO:-go}

cleanup() {
	if [ -z "${KEEP:-}" ]; then
		for w in a b; do
			[ -d "$dir/wt-$w" ] && git worktree remove --force "$dir/wt-$w"
		done
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

for w in a b; do
	wt=$dir/wt-$w
	git worktree add --detach "$wt" "$commit" >/dev/null
	echo "== building in $wt ($commit)"
	start=$(date +%s)
	(
		cd "$wt"
		make --no-print-directory images GO="$GO" >"$dir/$w.log" 2>&1
		_out/imager node -bin _out/payload/bin -machined _out/machined -bundle _out/images/bundle.tar \
			-lock payload/images.lock -tag plinth/node:repro -out _out/images/node.tar >"$dir/$w.node" 2>>"$dir/$w.log"
	) || { echo "build in $wt failed; log:"; tail -30 "$dir/$w.log"; exit 1; }
	echo "   $(($(date +%s) - start)) s"
	(cd "$wt" && sha256sum _out/images/bundle.tar _out/images/node.tar payload/images.lock) | tee "$dir/$w.sums"
	cat "$dir/$w.node"
	# The bundle's digests as this build printed them (the lock is checked, never written).
	grep '^sha256:' "$dir/$w.log" >"$dir/$w.digests"
	status=$(git -C "$wt" status --porcelain)
	if [ -n "$status" ]; then
		echo "FAIL: the build left $wt dirty:"; echo "$status"; exit 1
	fi
done

fail=0
for f in sums node digests; do
	if ! diff -u "$dir/a.$f" "$dir/b.$f"; then
		echo "FAIL: the two worktrees differ ($f)"; fail=1
	fi
done
[ "$fail" = 0 ] || exit 1
echo "OK: both worktrees built the same bundle ($(awk 'NR==1{print $1}' "$dir/a.sums")) and node image ($(cut -d' ' -f1 "$dir/a.node")); lock untouched, trees clean"
