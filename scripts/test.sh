#!/usr/bin/env bash
# The whole gate: formatting, clippy, the generated schema, then every test
# against real Redis, PostgreSQL and Tesseract. Installs and starts what is
# missing first (scripts/deps.sh). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/receipt-ocr-target}"
# Where the PP-OCR tests find the models deps.sh fetched.
export OCR_MODELS_DIR="${OCR_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/receipt-ocr/models}"
# One OpenMP thread per Tesseract: several run side by side.
export OMP_THREAD_LIMIT=1
export RUST_LOG="${RUST_LOG:-warn}"

# Databases left by earlier test runs (each test makes its own).
psql "${TEST_DATABASE_BASE:-postgres://postgres@127.0.0.1}/postgres" -Atqc \
  "select datname from pg_database where datname like 'receipt_ocr_test_%'" |
  while read -r name; do
    psql "${TEST_DATABASE_BASE:-postgres://postgres@127.0.0.1}/postgres" -qc "drop database if exists \"$name\"" >/dev/null 2>&1 || true
  done
# Queues left by earlier runs.
redis-cli -h 127.0.0.1 --scan --pattern 'bull:test-*' | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null

# Debian's Chromium, for the dashboard's browser tests (tests/node/dashboard.js),
# unless CHROMIUM names another binary (Ubuntu has no such package).
if [ -z "${CHROMIUM:-}" ] && ! dpkg -s chromium >/dev/null 2>&1; then
  echo "deps: installing chromium (for the dashboard's browser tests)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 chromium
fi

# BullMQ's Node client for the interop test, playwright-core for the dashboard's.
npm ci --prefix tests/node --no-audit --no-fund --silent
# Bull Board (bullboard/), for its test.
npm ci --prefix bullboard --no-audit --no-fund --silent

for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" ||
    rustup component add "$component"
done
echo "gate: cargo fmt --check"
cargo fmt --all -- --check
echo "gate: cargo clippy -D warnings"
cargo clippy --locked --all-targets --all-features --quiet -- -D warnings
echo "gate: schema.rs against the migrations"
bash scripts/check-schema.sh
echo "gate: docker-compose.yml, Prometheus and the Kubernetes example against their schemas"
bash scripts/check-compose.sh
echo "gate: the OCR models and ONNX Runtime are readable by every user (the image runs as receipt)"
unreadable=$(find "$OCR_MODELS_DIR" -type f \( -name '*.onnx' -o -name '*.so*' \) ! -perm -0004)
if [ -n "$unreadable" ]; then
  printf 'gate: not readable by other users (scripts/ocr-models.sh makes them 0644):\n%s\n' "$unreadable" >&2
  exit 1
fi

# `fault-injection` compiles in the test-only switches (OCR_INJECT_PANICS,
# OCR_INJECT_HOLD_MS). The last line sums every test binary's results.
results=$(mktemp)
trap 'rm -f "$results"' EXIT
cargo test --locked --features fault-injection "$@" 2>&1 | tee "$results"
# The OpenAPI document and the GraphQL schema against a live service.
bash scripts/schemathesis.sh
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$results"
