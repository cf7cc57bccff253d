#!/usr/bin/env bash
# Load-test receipt-ocr with the seed's HTTP load tool (load.js), with the
# same two scenarios the Node seed was measured on, so figures compare:
#   (a) upload throughput: A_UPLOADS uploads of one JPEG, A_CONNS in flight,
#       `receipt-ocr api` only (no workers)
#   (b) end to end: the images listed in FILES (one upload each) through
#       `receipt-ocr serve` (OCR_CONCURRENCY=2, limiter off), polled until final
# Needs: LOAD_JS=path/to/load.js (its node_modules installed), SAMPLE=a JPEG
# for (a), FILES=a list of image paths for (b). Prints load.js's JSON lines
# plus the service's peak RSS. Each run gets its own database, queue and blob
# directory, removed afterwards.
# Usage: LOAD_JS=… SAMPLE=… FILES=… bench/compare.sh [a|b|ab]
set -euo pipefail
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
BIN="$CARGO_TARGET_DIR/release/receipt-ocr"
mkdir -p "$OUT"
cargo build --release --locked --bin receipt-ocr 2>/dev/null

PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
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
  stop
fi
echo "results in $OUT"
