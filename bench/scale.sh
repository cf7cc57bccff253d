#!/usr/bin/env bash
# Scaling run: the same receipts read by 1, 2 and 4 `receipt-ocr worker`
# processes (OCR_CONCURRENCY=1 each) behind one `receipt-ocr api`.
#
# For each worker count: a fresh database, queue and blob directory; the
# queue is paused, every receipt uploaded through the api, the workers
# started and ready; then the queue is resumed and the clock runs until
# every job is final. Prints one JSON line per worker count:
#   receipts/min, CPU seconds per receipt (workers), speed-up over one
#   worker, efficiency per worker and per core (this machine's cores),
#   peak RSS per worker, the api's CPU per upload, and Redis commands and
#   PostgreSQL transactions and Redis and PostgreSQL CPU per receipt (the
#   whole run: uploads, reads, heartbeats; the polls that watch for the end
#   are one connection's cheap queries, their transactions left out), the figures
#   docs/scaling.md's arithmetic uses.
#
# Usage: bench/scale.sh [DIR]   (default ../shared/receipts/dev)
#   WORKERS="1 2 4"  RECEIPTS=60 (spread evenly over DIR's sorted images)
#   WORKER_DB_CONNECTIONS=4 (each worker's DATABASE_MAX_CONNECTIONS)
#   OCR_ENGINE=auto  PORT=4300
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-../shared/receipts/dev}"
WORKERS="${WORKERS:-1 2 4}" RECEIPTS="${RECEIPTS:-60}" PORT="${PORT:-4300}"
# As deploy/kubernetes/worker.yaml sets it.
WORKER_DB_CONNECTIONS="${WORKER_DB_CONNECTIONS:-4}"
export OCR_ENGINE="${OCR_ENGINE:-auto}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/receipt-ocr-target}"
BIN="$CARGO_TARGET_DIR/release/receipt-ocr"
cargo build --release --locked --bin receipt-ocr 2>/dev/null
CORES=$(nproc)
TICKS=$(getconf CLK_TCK)
REDIS_HOST=127.0.0.1
PG_BASE=postgres://postgres@127.0.0.1:5432

files=$(mktemp)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -f "$files"
}
trap cleanup EXIT
find "$DIR" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort |
  awk -v want="$RECEIPTS" '{ all[NR] = $0 } END {
    step = NR / want; if (step < 1) step = 1
    for (i = 0; i < want && int(i * step) + 1 <= NR; i++) print all[int(i * step) + 1] }' > "$files"
N=$(wc -l < "$files")

cpu_ticks() { # utime + stime of the given pids
  local sum=0 pid
  for pid in "$@"; do sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
  echo "$sum"
}
proc_ticks() { # CPU of every process with this name, and of its reaped children
  local sum=0 pid
  for pid in $(pgrep -x "$1"); do
    sum=$((sum + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}
redis_commands() { redis-cli -h "$REDIS_HOST" info stats | awk -F: '/^total_commands_processed/ { print $2 + 0 }'; }
pg_xacts() { psql "$PG_BASE/postgres" -Atc "select xact_commit from pg_stat_database where datname = '$1'"; }
wait_ready() { # port
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$1/health/ready" >/dev/null && return 0; sleep 0.1; done
  echo "no process became ready on port $1" >&2; exit 1
}
now() { date +%s.%N; }
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; done
  PIDS=()
}

one_worker_rate=""
for n in $WORKERS; do
  ts="$(date +%Y%m%d%H%M%S)_$n"
  db="receipt_ocr_scale_$ts"
  export DATABASE_URL="$PG_BASE/$db" REDIS_URL="redis://$REDIS_HOST:6379" QUEUE_NAME="scale-$ts" \
    BLOB_STORE="/var/tmp/receipt-ocr-scale/$ts" OCR_CONCURRENCY=1 OCR_RATE_MAX=0 OMP_THREAD_LIMIT=1 RUST_LOG=warn
  PORT="$PORT" "$BIN" api > "/tmp/scale-api-$ts.log" 2>&1 &
  api=$!; PIDS=("$api")
  wait_ready "$PORT"
  curl -sf -X POST "http://127.0.0.1:$PORT/api/queue/pause" >/dev/null

  commands0=$(redis_commands); xacts0=$(pg_xacts "$db"); api0=$(cpu_ticks "$api")
  redis0=$(proc_ticks redis-server); pg0=$(proc_ticks postgres)
  xargs -d '\n' "$BIN" upload --json --concurrency 8 --url "http://127.0.0.1:$PORT" < "$files" > "/tmp/scale-upload-$ts.json"
  api1=$(cpu_ticks "$api")

  workers=()
  for i in $(seq "$n"); do
    PORT=$((PORT + i)) DATABASE_MAX_CONNECTIONS="$WORKER_DB_CONNECTIONS" "$BIN" worker > "/tmp/scale-worker-$ts-$i.log" 2>&1 &
    workers+=("$!"); PIDS+=("$!")
  done
  for i in $(seq "$n"); do wait_ready $((PORT + i)); done

  # One connection watches for the end (a psql per poll would cost
  # PostgreSQL a backend start each time).
  coproc PSQL { psql "$DATABASE_URL" -Atq; }
  ticks0=$(cpu_ticks "${workers[@]}")
  start=$(now)
  curl -sf -X POST "http://127.0.0.1:$PORT/api/queue/resume" >/dev/null
  polls=0
  while :; do
    echo "select count(*) from receipts where status in ('completed', 'failed');" >&"${PSQL[1]}"
    read -r done_count <&"${PSQL[0]}"
    polls=$((polls + 1))
    [ "$done_count" -ge "$N" ] && break
    sleep 0.5
  done
  end=$(now)
  ticks1=$(cpu_ticks "${workers[@]}")
  commands1=$(redis_commands); redis1=$(proc_ticks redis-server)
  rss=$(for pid in "${workers[@]}"; do awk '/VmHWM/ { print $2 }' "/proc/$pid/status"; done | sort -n | tail -1)
  echo "select count(*) from receipts where status = 'failed';" >&"${PSQL[1]}"
  read -r failed <&"${PSQL[0]}"
  exec {PSQL[1]}>&-
  # PostgreSQL's backends publish their counts when they end: stop the
  # service, wait for its connections to close, then read them.
  stop_all
  for _ in $(seq 100); do
    [ "$(psql "$PG_BASE/postgres" -Atc "select count(*) from pg_stat_activity where datname = '$db'")" = 0 ] && break
    sleep 0.1
  done
  xacts1=$(pg_xacts "$db"); pg1=$(proc_ticks postgres)

  rate=$(echo "$N * 60 / ($end - $start)" | bc -l)
  [ -z "$one_worker_rate" ] && one_worker_rate=$(echo "$rate / $n" | bc -l)
  used_cores=$(( n < CORES ? n : CORES ))
  jq -nc --argjson workers "$n" --argjson receipts "$N" --argjson failed "$failed" --argjson cores "$CORES" \
    --argjson seconds "$(echo "$end - $start" | bc -l)" --argjson rate "$rate" --argjson one "$one_worker_rate" \
    --argjson used "$used_cores" --argjson cpu "$(echo "($ticks1 - $ticks0) / $TICKS / $N" | bc -l)" \
    --argjson rss "$rss" --argjson api_cpu "$(echo "($api1 - $api0) * 1000 / $TICKS / $N" | bc -l)" \
    --argjson redis "$(echo "($commands1 - $commands0) / $N" | bc -l)" \
    --argjson pg "$(echo "($xacts1 - $xacts0 - $polls - 1) / $N" | bc -l)" --arg engine "$OCR_ENGINE" \
    --argjson redis_cpu "$(echo "($redis1 - $redis0) * 1000 / $TICKS / $N" | bc -l)" \
    --argjson pg_cpu "$(echo "($pg1 - $pg0) * 1000 / $TICKS / $N" | bc -l)" '{
      engine: $engine, workers: $workers, cores: $cores, receipts: $receipts, failed: $failed,
      seconds: ($seconds * 10 | round / 10), receipts_per_min: ($rate * 10 | round / 10),
      cpu_s_per_receipt: ($cpu * 100 | round / 100),
      speedup: ($rate / $one * 100 | round / 100),
      efficiency_per_worker: ($rate / ($one * $workers) * 100 | round / 100),
      efficiency_per_core: ($rate / ($one * $used) * 100 | round / 100),
      peak_rss_mib_per_worker: ($rss / 1024 | round),
      api_cpu_ms_per_upload: ($api_cpu * 10 | round / 10),
      redis_commands_per_receipt: ($redis * 10 | round / 10),
      pg_transactions_per_receipt: ($pg * 10 | round / 10),
      redis_cpu_ms_per_receipt: ($redis_cpu * 100 | round / 100),
      postgres_cpu_ms_per_receipt: ($pg_cpu * 100 | round / 100) }'

  redis-cli -h "$REDIS_HOST" --scan --pattern "bull:$QUEUE_NAME*" | xargs -r -n 500 redis-cli -h "$REDIS_HOST" del >/dev/null
  psql "$PG_BASE/postgres" -qc "drop database if exists \"$db\"" >/dev/null
  rm -rf "$BLOB_STORE" /tmp/scale-*-"$ts"*
done
