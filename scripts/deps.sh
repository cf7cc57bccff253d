#!/usr/bin/env bash
# Make this Debian/Ubuntu machine ready to build, test and run receipt-ocr:
# install the system packages, fetch the PP-OCR models and ONNX Runtime into
# OCR_MODELS_DIR (scripts/ocr-models.sh), then start Redis and PostgreSQL if
# they do not answer. Sourced by scripts/up.sh and scripts/test.sh.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

PACKAGES=(build-essential pkg-config clang libclang-dev libtesseract-dev libleptonica-dev
          tesseract-ocr-eng fonts-dejavu-core unzip redis-server redis-tools postgresql postgresql-client
          poppler-utils libheif-examples util-linux qpdf wamerican openssl curl jq python3-venv)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi

. "$(dirname "${BASH_SOURCE[0]}")/ocr-models.sh"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "deps: installing Node.js (for the BullMQ interop test)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 nodejs npm
fi

if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "deps: warning: Node.js $(node --version) is older than 20, which the browser tests' playwright-core wants; put a Node 20 or later first on PATH if they fail" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: Rust is missing. Install it with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "deps: starting Redis on 127.0.0.1:6379"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/receipt-ocr.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "deps: starting PostgreSQL on 127.0.0.1:5432"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
fi

# The server the tests (TEST_DATABASE_BASE) or the service (DATABASE_URL:
# its own database, or the server's `postgres` one before ours is made)
# will use; -w: never prompt. Passwords are not shown.
pg_answers() { psql -w "$1" -Atqc 'select 1' >/dev/null 2>&1; }
if [ -n "${TEST_DATABASE_BASE:-}" ]; then
  DATABASE_BASE_URL="$TEST_DATABASE_BASE"
  pg_answers "$DATABASE_BASE_URL/postgres" && pg_ok=1 || pg_ok=0
elif [ -n "${DATABASE_URL:-}" ]; then
  DATABASE_BASE_URL="${DATABASE_URL%%\?*}"
  case "${DATABASE_BASE_URL#*://}" in */*) DATABASE_BASE_URL="${DATABASE_BASE_URL%/*}" ;; esac
  { pg_answers "$DATABASE_URL" || pg_answers "$DATABASE_BASE_URL/postgres"; } && pg_ok=1 || pg_ok=0
else
  DATABASE_BASE_URL="postgres://postgres@127.0.0.1"
  pg_answers "$DATABASE_BASE_URL/postgres" && pg_ok=1 || pg_ok=0
fi
# A fresh Debian or Ubuntu PostgreSQL asks for a password on 127.0.0.1 and
# the postgres user has none. With no URL given, use a role of our own
# there, made once (peer login over the socket as the postgres user; the
# SQL on stdin, so no password shows in `ps`), its password generated once
# and kept in the cache. A role another user made keeps its password.
if [ "$pg_ok" = 0 ] && [ -z "${TEST_DATABASE_BASE:-}" ] && [ -z "${DATABASE_URL:-}" ]; then
  as_postgres=(sudo -u postgres)
  [ "$(id -u)" -eq 0 ] && as_postgres=(runuser -u postgres --)
  password_file="${XDG_CACHE_HOME:-$HOME/.cache}/receipt-ocr/postgres-password"
  if [ ! -s "$password_file" ]; then
    mkdir -p "$(dirname "$password_file")"
    (umask 077; openssl rand -hex 16 > "$password_file")
  fi
  own_base="postgres://receipt_ocr:$(cat "$password_file")@127.0.0.1"
  if ! pg_answers "$own_base/postgres"; then
    "${as_postgres[@]}" psql -w -q -d postgres >/dev/null 2>&1 <<SQL || true
SELECT 'CREATE ROLE receipt_ocr LOGIN CREATEDB PASSWORD ''$(cat "$password_file")'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'receipt_ocr') \gexec
SQL
  fi
  if pg_answers "$own_base/postgres"; then
    echo "deps: PostgreSQL asks for a password on 127.0.0.1: using the role receipt_ocr (password in $password_file)"
    DATABASE_BASE_URL="$own_base"
    export TEST_DATABASE_BASE="$DATABASE_BASE_URL"
    export DATABASE_URL="$DATABASE_BASE_URL/receipt_ocr"
    pg_ok=1
    owner=$(psql -w "$own_base/postgres" -Atc \
      "select pg_get_userbyid(datdba) from pg_database where datname = 'receipt_ocr'")
    if [ -n "$owner" ] && [ "$owner" != receipt_ocr ]; then
      echo "deps: warning: the database receipt_ocr belongs to $owner, so the service cannot migrate it as receipt_ocr; set DATABASE_URL to a URL that may" >&2
    fi
    unset owner
  fi
  unset own_base
fi
if [ "$pg_ok" = 0 ]; then
  shown=$(printf '%s' "$DATABASE_BASE_URL" | sed 's#\(://[^:/@]*\):[^/]*@#\1:***@#')
  cat >&2 <<MSG
deps: PostgreSQL runs but refuses $shown (Debian asks for a password on
127.0.0.1 by default). Either set DATABASE_URL (and TEST_DATABASE_BASE for the tests) to a
URL with a password, e.g. postgres://postgres:secret@127.0.0.1, after
  sudo -u postgres psql -c "ALTER USER postgres PASSWORD 'secret'"
or allow local trust logins for the postgres user in pg_hba.conf and reload PostgreSQL.
MSG
  exit 1
fi
unset pg_ok

# The S3-compatible server the S3 blob tests start (tests/api/s3.rs):
# moto's `moto_server`, pinned, in a virtualenv of its own in the cache
# (wheels only, about a minute on a cold cache). MOTO_SERVER points at it.
MOTO_VERSION=5.2.1
MOTO_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/receipt-ocr/moto-$MOTO_VERSION"
if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  echo "deps: installing moto[server]==$MOTO_VERSION into $MOTO_VENV (the tests' S3 server)"
  if ! python3 -m venv "$MOTO_VENV" >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-venv
    python3 -m venv "$MOTO_VENV"
  fi
  "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
export MOTO_SERVER="$MOTO_VENV/bin/moto_server"
