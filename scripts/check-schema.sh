#!/usr/bin/env bash
# Check that src/store/schema.rs is exactly what diesel's print-schema makes
# of the migrations: apply them to a scratch database and compare.
# `scripts/check-schema.sh --write` rewrites the file instead.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${RECEIPT_OCR_TOOLS:-/var/tmp/receipt-ocr-tools}"
DIESEL="$TOOLS/bin/diesel"
if [ ! -x "$DIESEL" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  dpkg -s libpq-dev >/dev/null 2>&1 || {
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libpq-dev
  }
  echo "check-schema: installing diesel_cli into $TOOLS (once)"
  CARGO_TARGET_DIR="$TOOLS/target" cargo install diesel_cli --version 2.3.14 --locked \
    --no-default-features --features postgres --root "$TOOLS" --quiet
fi

base="${TEST_DATABASE_BASE:-postgres://postgres@127.0.0.1}"
name="receipt_ocr_schema_check_$$"
url="$base/$name"
psql "$base/postgres" -qc "create database $name" >/dev/null
trap 'psql "$base/postgres" -qc "drop database if exists $name" >/dev/null 2>&1 || true' EXIT
"$DIESEL" migration run --database-url "$url" --migration-dir migrations >/dev/null
generated=$(mktemp)
"$DIESEL" print-schema --database-url "$url" > "$generated"

if [ "${1:-}" = "--write" ]; then
  cp "$generated" src/store/schema.rs
  echo "check-schema: src/store/schema.rs rewritten"
elif ! diff -u src/store/schema.rs "$generated"; then
  echo "check-schema: src/store/schema.rs differs from the migrations; run scripts/check-schema.sh --write" >&2
  exit 1
else
  echo "check-schema: src/store/schema.rs matches the migrations"
fi
