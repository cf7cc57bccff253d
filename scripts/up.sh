#!/usr/bin/env bash
# Bring receipt-ocr up on this machine: install and start what it needs,
# build it, and serve the API and OCR workers on PORT (default 4000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

# The server deps.sh found answering (not `localhost`, the service's own
# default, which may resolve to ::1 where PostgreSQL trusts only 127.0.0.1).
export DATABASE_URL="${DATABASE_URL:-$DATABASE_BASE_URL/receipt_ocr}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/receipt-ocr-target}"
export OMP_THREAD_LIMIT="${OMP_THREAD_LIMIT:-1}"
cargo build --release --locked
echo "receipt-ocr: http://127.0.0.1:${PORT:-4000}/docs (Swagger UI), /graphql"
exec "$CARGO_TARGET_DIR/release/receipt-ocr" serve "$@"
