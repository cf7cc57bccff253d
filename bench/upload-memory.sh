#!/usr/bin/env bash
# Peak memory of an `api` process taking UPLOADS concurrent uploads of
# SIZE_MIB MiB each, once per MAX_UPLOAD_BYTES_IN_FLIGHT value given (the
# default cap if none): prints the peak RSS (VmHWM) before and after, and
# how many uploads were accepted (200) or asked to retry (503). Each run
# gets its own database, queue and blob directory, removed afterwards.
# Uses the binary in CARGO_TARGET_DIR (built if missing).
# Usage: bench/upload-memory.sh [IN_FLIGHT_BYTES …]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/receipt-ocr-target}"
UPLOADS="${UPLOADS:-50}"
SIZE_MIB="${SIZE_MIB:-9}"
BASE="${TEST_DATABASE_BASE:-postgres://postgres@127.0.0.1}"
binary="$CARGO_TARGET_DIR/debug/receipt-ocr"
[ -x "$binary" ] || cargo build --locked --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A PNG header (3000 x 3000, grey) then random pixel data: it passes the
# upload's checks, so it is taken in whole, stored and queued.
python3 - "$SIZE_MIB" >"$work/upload.png" <<'PY'
import os, struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3000, 3000, 8, 0, 0, 0, 0))
sys.stdout.buffer.write(head + chunk(b"IDAT", os.urandom(int(sys.argv[1]) * 1048576 - len(head) - 12)))
PY

measure() {
  local port name pid before after answers
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  name="receipt_ocr_bench_mem_$$_$RANDOM"
  env PORT="$port" HOST=127.0.0.1 DATABASE_URL="$BASE/$name" QUEUE_NAME="bench-mem-$$" \
    BLOB_STORE="$work/blobs" RUST_LOG=error ${1:+MAX_UPLOAD_BYTES_IN_FLIGHT=$1} "$binary" api 2>/dev/null &
  pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done
  before=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$pid/status")
  answers=$(seq "$UPLOADS" | xargs -P "$UPLOADS" -I{} curl -s -o /dev/null -w '%{http_code}\n' \
    -F "file=@$work/upload.png" "http://127.0.0.1:$port/api/upload" | sort | uniq -c | awk '{ printf "%s×%s ", $1, $2 }')
  after=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  psql "$BASE/postgres" -qc "drop database if exists \"$name\"" >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 --scan --pattern "bull:bench-mem-$$:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
  echo "in-flight cap ${1:-default}: $UPLOADS × $SIZE_MIB MiB uploads, peak RSS ${before} → ${after} MiB, answers ${answers}"
}

if [ $# -eq 0 ]; then measure ""; else for cap in "$@"; do measure "$cap"; done; fi
