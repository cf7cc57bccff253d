#!/usr/bin/env bash
# Schemathesis (pinned, from PyPI, in a venv it makes once) against a live
# `receipt-ocr serve` on a random port with its own database, queue and blob
# folder: every check over the OpenAPI document, then over the GraphQL
# schema, a bounded number of examples each. Any violation fails the gate.
# Called by scripts/test.sh after the cargo tests (it uses the debug binary
# they built); runs alone too once deps.sh has run.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-25}"
VENV="${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/receipt-ocr/schemathesis-$VERSION}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/receipt-ocr-target}"
BASE="${TEST_DATABASE_BASE:-postgres://postgres@127.0.0.1}"

if [ ! -x "$VENV/bin/schemathesis" ]; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv
  fi
  echo "schemathesis: installing schemathesis==$VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION"
fi

# The same features as the cargo tests, so their build is reused.
cargo build --locked --quiet --features fault-injection
binary="$CARGO_TARGET_DIR/debug/receipt-ocr"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name="receipt_ocr_test_st_$$"
work=$(mktemp -d)
log="$work/serve.log"
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  psql "$BASE/postgres" -qc "drop database if exists \"$name\"" >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 --scan --pattern "bull:st-$$:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

PORT="$port" HOST=127.0.0.1 DATABASE_URL="$BASE/$name" QUEUE_NAME="st-$$" \
  BLOB_STORE="$work/blobs" OCR_ENGINE=tesseract OCR_CONCURRENCY=1 OCR_RATE_MAX=0 \
  RUST_LOG="${RUST_LOG:-warn}" "$binary" serve 2>"$log" &
server=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done

# Each run is bounded: EXAMPLES per operation and phase, and at most
# MAX_TIME seconds of generation (it then stops and reports what it found).
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-90}"
run() {
  local name=$1 schema=$2; shift 2
  echo "gate: schemathesis $name (at most $EXAMPLES examples per operation, ${MAX_TIME} s)"
  # From the scratch folder: Schemathesis keeps its example database in
  # the working directory (.schemathesis/).
  (cd "$work" && timeout $((MAX_TIME + 120)) "$VENV/bin/schemathesis" --no-color "${config[@]}" \
    run "$schema" --checks all --max-examples "$EXAMPLES" --max-time "$MAX_TIME" --seed 1 "$@")
}
# Every check runs, but for one per schema that cannot apply:
# - DELETE /api/job/{job_id} cancels a job rather than deleting it: the job
#   stays readable as `cancelled` (its receipt and image are kept for a
#   retry), so "deleted resource still available" (use_after_free) cannot
#   hold for our only DELETE. scripts/schemathesis.toml lists the statuses
#   that answer well-formed but semantically bad requests.
# - GET /api/job/{job_id}/events is a Server-Sent Events stream:
#   poem-openapi declares it as `type: array, format: event-stream` of
#   JobUpdate, and Schemathesis 4.32.5's SSE check validates each event
#   envelope ({data, event, id}) against that whole array schema, so it
#   cannot pass however the events look. tests/api/events.rs parses every
#   event of real streams as a JobUpdate instead.
config=(--config-file "$PWD/scripts/schemathesis.toml")
run "OpenAPI" "http://127.0.0.1:$port/openapi.json" --exclude-checks use_after_free \
  --exclude-path '/api/job/{job_id}/events'
# - "valid query accepted" (positive_data_acceptance) cannot hold for
#   GraphQL fields that take a job or receipt id: random strings name no
#   job, and the answer is a `not_found` error (the code REST's 404 has),
#   which the check counts as a rejected query; nor for the listing's rules
#   (dates on the calendar, `to` after `from`, a cursor the service gave).
#   The other fields take no arguments.
config=()
run "GraphQL" "http://127.0.0.1:$port/graphql" --exclude-checks positive_data_acceptance
if ! kill -0 "$server" 2>/dev/null; then
  echo "schemathesis: the service died during the run" >&2
  cat "$log" >&2
  exit 1
fi
