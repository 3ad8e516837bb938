#!/usr/bin/env bash
# Runs the Kubernetes conformance suite (e2e.test of the pinned Kubernetes version) against
# an isolated local Docker cluster of one control plane and two workers, offline: the test
# images are built here (imager conformance-images) and imported into every node. Writes
# ginkgo's reports and summary.txt into $OUT/report. make conformance builds what it needs
# first; see docs/conformance.md.
#
# Environment:
#   NODE_IMAGE     the node image (required)
#   FOCUS          ginkgo --focus of the parallel pass (default: every [Conformance] test)
#   SERIAL_FOCUS   ginkgo --focus of the serial pass (default: the [Serial] [Conformance]
#                  tests; empty: no serial pass)
#   PROCS          parallel ginkgo processes (default 8: the tests mostly wait, and 8 kept
#                  2 cores busy without a failure)
#   KEEP_CLUSTER=1 leave the cluster running afterwards
#   K8S_VERSION    the Kubernetes version, for the summary
#   CLUSTER_NAME, CIDR  the cluster (default conformance, 10.5.60.0/24)
set -euo pipefail

: "${NODE_IMAGE:?set NODE_IMAGE to the node image (make conformance does)}"
OUT=${OUT:-_out/conformance}
NAME=${CLUSTER_NAME:-conformance}
CIDR=${CIDR:-10.5.60.0/24}
PROCS=${PROCS:-8}
FOCUS=${FOCUS:-'\[Conformance\]'}
SERIAL_FOCUS=${SERIAL_FOCUS-'\[Serial\].*\[Conformance\]|\[Conformance\].*\[Serial\]'}
PLINTHCTL=${PLINTHCTL:-_out/plinthctl}
KUBECTL=${KUBECTL:-_out/payload/bin/kubectl}
SUMMARY=${SUMMARY:-_out/conformancesummary}

# Absolute paths, keeping symbolic links: kubectl is the multicall binary kube under the
# name kubectl, which it must be run by.
OUT=$(realpath -s "$OUT")
PLINTHCTL=$(realpath -s "$PLINTHCTL")
KUBECTL=$(realpath -s "$KUBECTL")
REPORT=$OUT/report-$NAME
# The cluster's client config and kubeconfig stay in $OUT/home-$NAME, out of the user's own.
export HOME=$OUT/home-$NAME
export KUBECONFIG=$HOME/.kube/config
export KUBE_TEST_REPO_LIST=$OUT/repo-list.yaml
mkdir -p "$HOME" "$REPORT"
rm -f "$REPORT"/*.json "$REPORT"/summary.txt

say() { echo "conformance: $*"; }

if "$PLINTHCTL" cluster show --name "$NAME" >/dev/null 2>&1; then
  say "destroying the cluster $NAME left from an earlier run"
  "$PLINTHCTL" cluster destroy --name "$NAME"
fi
cleanup() {
  if [ "${KEEP_CLUSTER:-}" != 1 ]; then
    say "destroying the cluster $NAME (KEEP_CLUSTER=1 keeps it)"
    "$PLINTHCTL" cluster destroy --name "$NAME" || true
  fi
}
trap cleanup EXIT

say "creating the isolated cluster $NAME (1 control plane, 2 workers) from $NODE_IMAGE"
"$PLINTHCTL" cluster create --isolated --name "$NAME" --cidr "$CIDR" --workers 2 --image "$NODE_IMAGE" --wait-timeout 15m

say "importing the test images into every node"
"$PLINTHCTL" image import "$OUT/images.tar"

say "starting the node-local registry (localhost:5000 on every node) for the tests that pull always"
"$KUBECTL" apply -f test/conformance/registry.yaml
"$KUBECTL" -n conformance-registry rollout status daemonset/registry --timeout=5m

skip=$("$SUMMARY" -skips test/conformance/skips.tsv -skip-regexp)
parallel_skip='\[Serial\]'
serial_skip=()
if [ -n "$skip" ]; then
  parallel_skip="$parallel_skip|$skip"
  serial_skip=(--skip="$skip")
fi
E2E=(--kubeconfig="$KUBECONFIG" --provider=skeleton --kubectl-path="$KUBECTL" --dns-domain=cluster.local
  --disable-log-dump -v=2)
started=$(date +%s)
status=0
say "pass 1: the [Conformance] tests that may run in parallel, $PROCS at a time"
"$OUT/ginkgo" --procs="$PROCS" --timeout=3h --no-color -v --output-dir="$REPORT" --json-report=parallel.json \
  --focus="$FOCUS" --skip="$parallel_skip" "$OUT/e2e.test" -- "${E2E[@]}" > "$REPORT/parallel.log" 2>&1 || status=$?
say "pass 1 ended with status $status after $(( ($(date +%s) - started) / 60 )) min (log: $REPORT/parallel.log)"
if [ -n "$SERIAL_FOCUS" ]; then
  say "pass 2: the [Serial] [Conformance] tests, one at a time"
  s=0
  "$OUT/ginkgo" --procs=1 --timeout=2h --no-color -v --output-dir="$REPORT" --json-report=serial.json \
    --focus="$SERIAL_FOCUS" "${serial_skip[@]}" "$OUT/e2e.test" -- "${E2E[@]}" > "$REPORT/serial.log" 2>&1 || s=$?
  say "pass 2 ended with status $s after $(( ($(date +%s) - started) / 60 )) min (log: $REPORT/serial.log)"
fi

reports=("$REPORT"/*.json)
complete=()
if [ "$FOCUS" = '\[Conformance\]' ] && [ -n "$SERIAL_FOCUS" ]; then
  complete=(-complete) # every [Conformance] spec must have run, or be skipped with a reason
fi
{
  echo "Kubernetes ${K8S_VERSION:-} conformance on $NODE_IMAGE, $(date -u +%Y-%m-%dT%H:%MZ), $(( ($(date +%s) - started) / 60 )) min"
  echo "focus: $FOCUS; serial focus: ${SERIAL_FOCUS:-none}"
  "$SUMMARY" -skips test/conformance/skips.tsv "${complete[@]}" "${reports[@]}"
} > "$REPORT/summary.txt" 2>&1 || true
cat "$REPORT/summary.txt"
# The summary's last line says whether any [Conformance] spec failed or did not run.
! grep -q '^conformancesummary:' "$REPORT/summary.txt"
