#!/usr/bin/env bash
# Bull Board on our queues, locally: installs the pinned app in bullboard/
# (npm ci) and runs it against REDIS_URL (default redis://127.0.0.1:6379).
# QUEUE_NAMES, QUEUE_PREFIX, BULLBOARD_PORT (3001), BULLBOARD_READ_ONLY
# (true) as in bullboard/server.js.
set -euo pipefail
cd "$(dirname "$0")/../bullboard"
command -v npm >/dev/null || { echo "bullboard: install Node.js and npm first (apt-get install nodejs npm)" >&2; exit 1; }
npm ci --no-audit --no-fund --silent
exec node server.js
