#!/usr/bin/env bash
# Load-test receipt-ocr with the seed's HTTP load tool (load.js), with the
# same two scenarios the Node seed was measured on, so figures compare:
#   (a) upload throughput: A_UPLOADS uploads of one JPEG, A_CONNS in flight,
#       `receipt-ocr api` only (no workers)
#   (b) end to end: the images listed in FILES (one upload each) through
#       `receipt-ocr serve` (OCR_CONCURRENCY=2, limiter off), polled until final
#   (s) the same as (b) through the seed itself (its api.js and worker.js,
#       beside LOAD_JS, OCR_CONCURRENCY=2, limiter off), for the side by side
# Needs: LOAD_JS=path/to/load.js (its node_modules installed), SAMPLE=a JPEG
# for (a), FILES=a list of labelled image paths for (b) and (s) (default: the
# seed's 60, 30 SROIE and 30 SRD images of RECEIPTS, evenly spaced and
# interleaved). Prints load.js's JSON lines, the service's peak RSS and, for
# (b) and (s), the totals read scored against the labels beside the images
# (bench/score_totals.py: right, wrong, missing). Each run gets its own
# database, queue and blob directory, removed afterwards.
# Usage: LOAD_JS=… SAMPLE=… [FILES=…] [BIN=a built receipt-ocr] bench/compare.sh [a|b|s|abs]
set -euo pipefail
if [ -n "${BIN:-}" ]; then BIN="$(realpath "$BIN")"; fi # before the cd below
cd "$(dirname "$0")/.."
WHAT="${1:-ab}"
: "${LOAD_JS:?set LOAD_JS to the path of the seed benchmark load.js}"
TS="$(date +%Y%m%d%H%M%S)"
PORT="${PORT:-4200}"
OUT="${OUT:-/tmp/receipt-ocr-bench/$TS}"
UPLOAD_ROOT="${UPLOAD_ROOT:-$OUT}"
A_UPLOADS="${A_UPLOADS:-2000}" A_CONNS="${A_CONNS:-32}" A_WARMUP="${A_WARMUP:-200}"
B_CONNS="${B_CONNS:-8}" B_POLL_MS="${B_POLL_MS:-500}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/receipt-ocr-target}"
BIN="${BIN:-}"
mkdir -p "$OUT"
RECEIPTS="${RECEIPTS:-../shared/receipts/dev}"
if [ -z "${FILES:-}" ]; then
  FILES="$OUT/files.txt"
  paste -d '\n' \
    <(ls "$RECEIPTS"/sroie/*.jpg | awk -v k=30 '{f[NR-1]=$0} END {for (i=0;i<k;i++) print f[int(i*NR/k)]}') \
    <(ls "$RECEIPTS"/srd/*.jpg | awk -v k=30 '{f[NR-1]=$0} END {for (i=0;i<k;i++) print f[int(i*NR/k)]}') > "$FILES"
fi
if [ -z "$BIN" ]; then # BIN=… measures another build (one made earlier) instead
  cargo build --release --locked --bin receipt-ocr 2>/dev/null
  BIN="$CARGO_TARGET_DIR/release/receipt-ocr"
fi

PID=""
cleanup() { for p in "$PID" "${SEED_WORKER:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start() { # $1 = run name, $2 = subcommand
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/receipt_ocr_bench_$1_$TS" REDIS_URL=redis://127.0.0.1:6379 \
    QUEUE_NAME="bench-$1-$TS" BLOB_STORE="$UPLOAD_ROOT/blobs-$1-$TS" PORT OCR_CONCURRENCY=2 OCR_RATE_MAX=0 \
    OMP_THREAD_LIMIT=1 RUST_LOG=warn
  "$BIN" "$2" > "$OUT/$1.log" 2>&1 & PID=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && return 0; sleep 0.1; done
  echo "receipt-ocr did not start"; cat "$OUT/$1.log"; exit 1
}
peak_rss() { # $1 = label
  local rss
  rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status")
  printf '{"label": "%s", "peak_rss_mib": %s}\n' "$1" "$rss"
}
stop() {
  kill "$PID"; while kill -0 "$PID" 2>/dev/null; do sleep 0.1; done; PID=""
  redis-cli -h 127.0.0.1 --scan --pattern "bull:$QUEUE_NAME:*" | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"${DATABASE_URL##*/}\"" >/dev/null
  rm -rf "$BLOB_STORE"
}

if [[ "$WHAT" == *a* ]]; then
  : "${SAMPLE:?set SAMPLE to a JPEG for the upload test}"
  start a api
  node "$LOAD_JS" --url "http://127.0.0.1:$PORT" --file "$SAMPLE" --uploads "$A_WARMUP" --connections "$A_CONNS" --label warmup >/dev/null 2>&1
  node "$LOAD_JS" --url "http://127.0.0.1:$PORT" --file "$SAMPLE" --uploads "$A_UPLOADS" --connections "$A_CONNS" \
    --pids "$PID" --procs postgres,redis-server --label "receipt-ocr upload" 2>/dev/null | tee "$OUT/a.json"
  peak_rss "receipt-ocr upload" | tee -a "$OUT/a.json"
  stop
fi

if [[ "$WHAT" == *b* ]]; then
  : "${FILES:?set FILES to a list of images, one path a line}"
  start b serve
  node "$LOAD_JS" --url "http://127.0.0.1:$PORT" --files "$FILES" --uploads "$(wc -l < "$FILES")" --connections "$B_CONNS" \
    --wait --poll-ms "$B_POLL_MS" --pids "$PID" --procs postgres,redis-server --label "receipt-ocr e2e" 2>/dev/null | tee "$OUT/b.json"
  peak_rss "receipt-ocr e2e" | tee -a "$OUT/b.json"
  psql "$DATABASE_URL" -Atc "select status, count(*) from receipts group by 1" | tee "$OUT/b-check.txt"
  psql "$DATABASE_URL" -AtF $'\t' -c "select content_hash, total_amount from receipts" |
    python3 bench/score_totals.py "receipt-ocr totals" "$FILES" sha256 | tee -a "$OUT/b.json"
  stop
fi

if [[ "$WHAT" == *s* ]]; then
  SEED_DIR="${SEED_DIR:-$(dirname "$LOAD_JS")}"
  [ -d "$SEED_DIR/node_modules" ] || { echo "run npm ci in $SEED_DIR first"; exit 1; }
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/seed_bench_$TS" REDIS_URL=redis://127.0.0.1:6379 \
    QUEUE_NAME=ocr-processing QUEUE_PREFIX="seed-$TS" UPLOAD_DIR="$UPLOAD_ROOT/seed-uploads-$TS" PORT \
    OCR_CONCURRENCY=2 OCR_RATE_MAX=0
  node "$SEED_DIR/api.js" > "$OUT/s-api.log" 2>&1 & PID=$!
  node "$SEED_DIR/worker.js" > "$OUT/s-worker.log" 2>&1 & SEED_WORKER=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && grep -q 'worker started' "$OUT/s-worker.log" && break; sleep 0.1; done
  node "$LOAD_JS" --url "http://127.0.0.1:$PORT" --files "$FILES" --uploads "$(wc -l < "$FILES")" --connections "$B_CONNS" \
    --wait --poll-ms "$B_POLL_MS" --pids "$PID,$SEED_WORKER" --procs postgres,redis-server --label "seed-node e2e" 2>/dev/null | tee "$OUT/s.json"
  psql "$DATABASE_URL" -AtF $'\t' -c "select original_name, total_amount from receipts" |
    python3 bench/score_totals.py "seed-node totals" "$FILES" name | tee -a "$OUT/s.json"
  kill "$SEED_WORKER"; kill "$PID"; while kill -0 "$PID" 2>/dev/null; do sleep 0.1; done; PID=""
  redis-cli -h 127.0.0.1 --scan --pattern "$QUEUE_PREFIX:*" | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"${DATABASE_URL##*/}\"" >/dev/null
  rm -rf "$UPLOAD_DIR"
fi
echo "results in $OUT"
