#!/usr/bin/env bash
# Fixed costs of one job: single-job latency (upload -> job completed, an
# idle service, one job at a time) for a blank 20x20 PNG and a receipt
# photo, through `receipt-ocr serve` (OCR_ENGINE=tesseract, comparable to
# the seed, and the default auto), through the Node seed (its api.js and
# worker.js), and the plain `tesseract IMG stdout` command (the ceiling).
# bench/single_jobs.py does the jobs and prints one JSON line per run and
# file: e2e, upload, BullMQ pickup and process p50/min/max ms, CPU ms per
# job of the service's processes (with the seed's tesseract children), load
# average, and for our service the time per job of each stage (from
# receipt_ocr_stage_duration_seconds).
#
# RUNS is the order, alternating by default: ours-tesseract seed ours-auto
# cli ours-tesseract seed. `before-tesseract`/`before-auto` run BEFORE_BIN
# (another build) the same way, to measure a change in the same sitting.
# Each service run gets its own database, queue and blob directory,
# removed afterwards. The machine is shared: run it under the bench lock.
# Usage: [SEED_DIR=…/seed-node] [PHOTO=IMG] [JOBS=20] [WARMUP=3] [RUNS=…]
#        flock /tmp/bench.lock bench/fixed_costs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TS="$(date +%Y%m%d%H%M%S)"
OUT="${OUT:-/tmp/receipt-ocr-fixed/$TS}"
PORT="${PORT:-4250}"
JOBS="${JOBS:-20}" WARMUP="${WARMUP:-3}"
RUNS="${RUNS:-ours-tesseract seed ours-auto cli ours-tesseract seed}"
PHOTO="${PHOTO:-../shared/receipts/dev/srd/srd_1004-receipt.jpg}"
SEED_DIR="${SEED_DIR:-/var/tmp/seed-node}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/receipt-ocr-target}"
BIN="${BIN:-$CARGO_TARGET_DIR/release/receipt-ocr}"
mkdir -p "$OUT"
BLANK="$OUT/blank-20x20.png"
python3 - "$BLANK" <<'EOF'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
rows = b"".join(b"\x00" + b"\xff" * 20 for _ in range(20))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20, 20, 8, 0, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
EOF

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
  PIDS=()
}
wait_for() { # $1 = URL, $2 = log
  for _ in $(seq 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1"; cat "$2"; exit 1
}
jobs_on() { # $1 = label, $2 = queue key, extra args
  local label="$1" key="$2"; shift 2
  for file in "$BLANK" "$PHOTO"; do
    python3 bench/single_jobs.py --url "http://127.0.0.1:$PORT" --file "$file" --jobs "$JOBS" \
      --warmup "$WARMUP" --queue-key "$key" --label "$label" "$@"
  done
}

ours() { # $1 = run name, $2 = binary, $3 = engine
  local n="${1//-/_}_$TS"
  unset QUEUE_PREFIX UPLOAD_DIR
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/receipt_ocr_fixed_$n" REDIS_URL=redis://127.0.0.1:6379 \
    QUEUE_NAME="fixed-$1-$TS" BLOB_STORE="$OUT/blobs-$1" PORT OCR_CONCURRENCY=2 OCR_RATE_MAX=0 \
    OCR_ENGINE="$3" OMP_THREAD_LIMIT=1 RUST_LOG=warn
  "$2" migrate > "$OUT/$1.log" 2>&1
  "$2" serve >> "$OUT/$1.log" 2>&1 & PIDS+=($!)
  wait_for "http://127.0.0.1:$PORT/health/ready" "$OUT/$1.log"
  jobs_on "$1" "bull:$QUEUE_NAME" --metrics --pids "${PIDS[0]}"
  stop_all
  for pattern in "bull:$QUEUE_NAME:*" "bull:$QUEUE_NAME-webhooks:*"; do
    redis-cli -h 127.0.0.1 --scan --pattern "$pattern" | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null
  done
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"${DATABASE_URL##*/}\"" >/dev/null
  rm -rf "$BLOB_STORE"
}

seed() {
  [ -d "$SEED_DIR/node_modules" ] || { echo "run npm ci in $SEED_DIR first"; exit 1; }
  unset BLOB_STORE OCR_ENGINE
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/seed_fixed_$TS" REDIS_URL=redis://127.0.0.1:6379 \
    QUEUE_NAME=ocr-processing QUEUE_PREFIX="seedfixed-$TS" UPLOAD_DIR="$OUT/seed-uploads" PORT \
    OCR_CONCURRENCY=2 OCR_RATE_MAX=0
  node "$SEED_DIR/api.js" > "$OUT/seed-api.log" 2>&1 & PIDS+=($!)
  node "$SEED_DIR/worker.js" > "$OUT/seed-worker.log" 2>&1 & PIDS+=($!)
  wait_for "http://127.0.0.1:$PORT/health" "$OUT/seed-api.log"
  for _ in $(seq 100); do grep -q 'worker started' "$OUT/seed-worker.log" && break; sleep 0.1; done
  jobs_on seed "$QUEUE_PREFIX:$QUEUE_NAME" --pids "$(IFS=,; echo "${PIDS[*]}")"
  stop_all
  redis-cli -h 127.0.0.1 --scan --pattern "$QUEUE_PREFIX:*" | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"${DATABASE_URL##*/}\"" >/dev/null
  rm -rf "$UPLOAD_DIR"
}

printf '{"date": "%s", "uptime": "%s", "tesseract": "%s", "jobs": %s}\n' "$(date -u +%FT%TZ)" \
  "$(uptime | sed 's/.*load/load/')" "$(tesseract --version 2>&1 | head -1)" "$JOBS"
for run in $RUNS; do
  case "$run" in
    ours-tesseract | ours-auto) ours "$run" "$BIN" "${run#ours-}" ;;
    before-tesseract | before-auto) ours "$run" "${BEFORE_BIN:?set BEFORE_BIN}" "${run#before-}" ;;
    seed) seed ;;
    cli) for file in "$BLANK" "$PHOTO"; do
           python3 bench/single_jobs.py --cli --file "$file" --jobs "$JOBS" --warmup "$WARMUP" --label cli
         done ;;
    *) echo "unknown run $run"; exit 1 ;;
  esac
done
echo "results in $OUT" >&2
