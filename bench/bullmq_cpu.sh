#!/usr/bin/env bash
# BullMQ's own queue bench (../shared/bench/bullmq/bench.js) with the Node
# process's CPU per processed job added to its JSON line
# (`process_cpu_us_per_job`, from process.cpuUsage() around the drain), to
# set beside `receipt-ocr bench queue`'s figure of the same name. The bench
# is not ours: it is copied to a temporary folder and edited there, never
# into this repository. Arguments go to bench.js (--jobs N --concurrency C).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bench="${BULLMQ_BENCH_DIR:-$here/../../shared/bench/bullmq}"
[ -f "$bench/bench.js" ] || {
  echo "bullmq_cpu: no bench.js in $bench (set BULLMQ_BENCH_DIR)" >&2
  exit 2
}
[ -d "$bench/node_modules/bullmq" ] || npm ci --prefix "$bench" --no-audit --no-fund --silent
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ln -s "$(cd "$bench" && pwd)/node_modules" "$work/node_modules"
# Three edits, each checked: start the CPU clock with the drain's, stop it
# with the drain's, and print the figure beside the latency.
sed -e 's/^\(  t0 = process.hrtime.bigint();\)$/\1 const cpu0 = process.cpuUsage();/' \
  -e 's/^\(  const drainS = .*;\)$/\1 const cpu = process.cpuUsage(cpu0);/' \
  -e 's/^\(    latency_ms_p50: .*latency_ms_p99: .*,\)$/\1 process_cpu_us_per_job: +((cpu.user + cpu.system) \/ N).toFixed(1),/' \
  "$bench/bench.js" > "$work/bench.js"
for edit in 'const cpu0 = process.cpuUsage()' 'const cpu = process.cpuUsage(cpu0)' 'process_cpu_us_per_job'; do
  grep -qF "$edit" "$work/bench.js" || {
    echo "bullmq_cpu: bench.js has changed shape; could not add: $edit" >&2
    exit 2
  }
done
cd "$work" && node bench.js "$@"
