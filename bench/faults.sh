#!/usr/bin/env bash
# The fault suite with more load, printing one report line per fault:
# jobs accepted / completed / failed / lost, rows stuck, and the time from
# the fault to recovery. Usage: bench/faults.sh [jobs per fault, default 40]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh >/dev/null
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/receipt-ocr-target}"
export OCR_MODELS_DIR="${OCR_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/receipt-ocr/models}"
export OMP_THREAD_LIMIT=1 RUST_LOG="${RUST_LOG:-error}"
export FAULT_JOBS="${1:-40}"
cargo test --release --features fault-injection --test api -- \
  --nocapture --test-threads 1 faults:: shutdown:: 2>&1 |
  grep -E '^(fault |shutdown |test result)'
