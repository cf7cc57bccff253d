#!/usr/bin/env bash
# Check what can be checked of the Docker stack without a Docker engine:
# - docker-compose.yml against the Compose Specification's JSON schema
#   (the copy vendored by check-jsonschema, from PyPI);
# - otel/prometheus.yml with promtool (Debian's `prometheus` package);
# - every PromQL expression of the Grafana dashboard, as recording rules
#   checked by promtool;
# - deploy/kubernetes/*.yaml against Kubernetes' own OpenAPI schemas, strictly
#   (unknown fields refused), with kubernetes-validate from PyPI, and the
#   image's USER numeric, as their runAsNonRoot needs;
# - with METRICS_URL set (e.g. http://127.0.0.1:4000/metrics), a live
#   /metrics page with `promtool check metrics`.
# Not checked here: that the images pull and start, the collector's config
# (no package ships otelcol), Grafana loading the dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=/var/tmp/receipt-ocr-tools
if ! command -v check-jsonschema >/dev/null; then
  if [ ! -x "$tools/venv/bin/check-jsonschema" ]; then
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet check-jsonschema==0.39.0
  fi
  PATH="$tools/venv/bin:$PATH"
fi
if ! command -v kubernetes-validate >/dev/null; then
  if [ ! -x "$tools/venv/bin/kubernetes-validate" ]; then
    [ -x "$tools/venv/bin/pip" ] || python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet kubernetes-validate==1.37.0
  fi
  PATH="$tools/venv/bin:$PATH"
fi
if ! command -v promtool >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends prometheus >/dev/null
fi

echo "check: docker-compose.yml against the compose-spec schema"
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

echo "check: deploy/kubernetes against Kubernetes 1.33's schemas"
kubernetes-validate --strict --quiet --kubernetes-version 1.33.0 deploy/kubernetes/*.yaml

echo "check: the image's user is numeric (Kubernetes' runAsNonRoot cannot check a name)"
if grep -q 'runAsNonRoot: true' deploy/kubernetes/*.yaml && ! grep -Eq '^USER [0-9]+(:[0-9]+)?$' Dockerfile; then
  echo "check: deploy/kubernetes sets runAsNonRoot but the Dockerfile's USER is not a uid" >&2
  exit 1
fi

echo "check: otel/prometheus.yml"
promtool check config otel/prometheus.yml

echo "check: the dashboard's and the worker autoscaler's PromQL"
rules=$(mktemp --suffix=.yml)
trap 'rm -f "$rules"' EXIT
python3 - otel/grafana/dashboards/receipt-ocr.json >"$rules" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
for panel in dashboard["panels"]:
    for i, target in enumerate(panel["targets"]):
        expr = target["expr"].replace("$__rate_interval", "1m")
        print(f"      - record: panel_{panel['id']}_{i}")
        print(f"        expr: {json.dumps(expr)}")
PY
# The worker autoscaler's query (prometheus-adapter fills in the matchers).
sed -n "s/^ *metricsQuery: '\(.*\)'$/\1/p" deploy/kubernetes/autoscaling.yaml |
  sed 's/<<.LabelMatchers>>/queue="ocr-processing"/' |
  while read -r expr; do printf '      - record: worker_autoscaler\n        expr: %s\n' "$(jq -Rn --arg e "$expr" '$e')"; done >>"$rules"
grep -q worker_autoscaler "$rules" || { echo "no metricsQuery found in deploy/kubernetes/autoscaling.yaml" >&2; exit 1; }
promtool check rules "$rules"

if [ -n "${METRICS_URL:-}" ]; then
  echo "check: $METRICS_URL"
  curl -fsS "$METRICS_URL" | promtool check metrics
fi
