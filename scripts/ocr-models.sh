#!/usr/bin/env bash
# Fetch what the PP-OCR engine needs at run time into OCR_MODELS_DIR, once:
# ONNX Runtime's shared library (PyPI `onnxruntime` wheel, MIT), the
# PP-OCRv4 models (PyPI `rapidocr-onnxruntime` wheel, Apache-2.0) and the
# PP-OCRv6 small models (PyPI `rapidocr` wheel, Apache-2.0). Wheels
# are pinned by version and sha256 and cached outside the clone. The two
# PP-OCRv4 models are then rewritten into the same function with fewer
# operators (scripts/fold_ppocr.py, checked against the originals with ONNX
# Runtime; `*.folded.onnx`, which the service loads), by `onnx` and
# `onnxruntime` in a virtualenv of their own in the cache. Quiet when
# everything is already in place. Sourced by scripts/deps.sh; the
# Dockerfile runs it in its build stage.
set -euo pipefail

OCR_MODELS_DIR="${OCR_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/receipt-ocr/models}"
export OCR_MODELS_DIR
OCR_WHEELS_DIR="${OCR_WHEELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/receipt-ocr/wheels}"

# ONNX Runtime for this machine's processor (the models are the same).
case "$(uname -m)" in
  aarch64 | arm64)
    OCR_PLATFORM="manylinux_2_28_aarch64"
    ORT_SHA256="2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c" ;;
  x86_64)
    OCR_PLATFORM="manylinux_2_28_x86_64"
    ORT_SHA256="5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d" ;;
  *)
    echo "ocr-models: no ONNX Runtime wheel is pinned for $(uname -m) (x86_64 and aarch64 are)" >&2
    return 1 2>/dev/null || exit 1 ;;
esac
ORT_WHEEL="onnxruntime-1.32.0-cp311-cp311-$OCR_PLATFORM.whl"
RAPIDOCR_WHEEL="rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
RAPIDOCR_SHA256="971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"
RAPIDOCR3_WHEEL="rapidocr-3.10.0-py3-none-any.whl"
RAPIDOCR3_SHA256="2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050"
OCR_FILES=(libonnxruntime.so.1.32.0 ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx
           ch_ppocr_mobile_v2.0_cls_infer.onnx PP-OCRv6_det_small.onnx PP-OCRv6_rec_small.onnx)
# What scripts/fold_ppocr.py runs with, pinned.
OCR_FOLD_PACKAGES=(onnx==1.23.2 onnxruntime==1.32.0)
OCR_FOLD_VENV="${OCR_FOLD_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/receipt-ocr/fold-venv}"
OCR_FOLD_SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/fold_ppocr.py"

# A stamp says which processor's ONNX Runtime the folder holds: a cache
# filled before the aarch64 wheel was pinned holds x86-64's everywhere.
OCR_PLATFORM_STAMP="$OCR_MODELS_DIR/onnxruntime.platform"
ocr_models_present() {
  local file
  for file in "${OCR_FILES[@]}"; do [ -s "$OCR_MODELS_DIR/$file" ] || return 1; done
  [ "$(cat "$OCR_PLATFORM_STAMP" 2>/dev/null)" = "$OCR_PLATFORM" ]
}

# pip is only needed on a cold run; Debian ships it as python3-pip.
ocr_ensure_pip() {
  python3 -m pip --version >/dev/null 2>&1 && return 0
  echo "ocr-models: installing python3-pip (to download the model wheels)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-pip
}

# Download one pinned wheel (for Linux on this processor, CPython 3.11,
# whatever the local Python is) unless the cache holds it with the right
# hash.
ocr_fetch_wheel() {
  local wheel="$1" sha="$2" spec="$3"
  if ! echo "$sha  $OCR_WHEELS_DIR/$wheel" | sha256sum -c --status 2>/dev/null; then
    echo "ocr-models: downloading $spec"
    python3 -m pip download -q --no-deps --only-binary=:all: --platform "$OCR_PLATFORM" \
      --python-version 3.11 --implementation cp --abi cp311 -d "$OCR_WHEELS_DIR" "$spec"
  fi
  if ! echo "$sha  $OCR_WHEELS_DIR/$wheel" | sha256sum -c --status; then
    echo "ocr-models: $wheel does not have the pinned sha256 $sha; refusing it" >&2
    rm -f "$OCR_WHEELS_DIR/$wheel"
    return 1
  fi
}

# Unpack the runtime and the models into a staging folder inside the
# models folder, then rename them in file by file: a process loading a
# model meanwhile sees the old file or the new one, never half of one.
ocr_unpack() {
  local staging file
  staging=$(mktemp -d "$OCR_MODELS_DIR/.unpack.XXXXXX")
  if ! unzip -q -o -j "$OCR_WHEELS_DIR/$ORT_WHEEL" 'onnxruntime/capi/libonnxruntime.so*' -d "$staging" ||
     ! unzip -q -o -j "$OCR_WHEELS_DIR/$RAPIDOCR_WHEEL" 'rapidocr_onnxruntime/models/*.onnx' -d "$staging" ||
     ! unzip -q -o -j "$OCR_WHEELS_DIR/$RAPIDOCR3_WHEEL" 'rapidocr/models/PP-OCRv6_*_small.onnx' -d "$staging"; then
    rm -rf "$staging"
    echo "ocr-models: could not unpack the wheels in $OCR_WHEELS_DIR" >&2
    return 1
  fi
  for file in "$staging"/*; do mv -f "$file" "$OCR_MODELS_DIR/"; done
  rmdir "$staging"
}

if ! ocr_models_present; then
  mkdir -p "$OCR_MODELS_DIR" "$OCR_WHEELS_DIR"
  ocr_ensure_pip
  ocr_fetch_wheel "$ORT_WHEEL" "$ORT_SHA256" onnxruntime==1.32.0
  ocr_fetch_wheel "$RAPIDOCR_WHEEL" "$RAPIDOCR_SHA256" rapidocr-onnxruntime==1.4.4
  ocr_fetch_wheel "$RAPIDOCR3_WHEEL" "$RAPIDOCR3_SHA256" rapidocr==3.10.0
  ocr_unpack
  ln -sf libonnxruntime.so.1.32.0 "$OCR_MODELS_DIR/libonnxruntime.so"
  echo "$OCR_PLATFORM" > "$OCR_PLATFORM_STAMP"
  echo "ocr-models: PP-OCR models and ONNX Runtime in $OCR_MODELS_DIR"
fi

# The rewriter's virtualenv (python3-venv on Debian when it is missing).
# Called only when a model is to be rewritten; pip leaves pinned packages
# that are already there alone.
ocr_fold_venv() {
  if [ ! -x "$OCR_FOLD_VENV/bin/pip" ]; then
    echo "ocr-models: installing ${OCR_FOLD_PACKAGES[*]} into $OCR_FOLD_VENV (to rewrite the PP-OCRv4 models)"
  fi
  if [ ! -x "$OCR_FOLD_VENV/bin/pip" ] && ! python3 -m venv "$OCR_FOLD_VENV" >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-venv
    python3 -m venv "$OCR_FOLD_VENV"
  fi
  "$OCR_FOLD_VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: "${OCR_FOLD_PACKAGES[@]}"
}

# Each PP-OCRv4 model rewritten beside its original, through a staging file
# renamed into place (a loading process never sees half a model). A stamp
# beside it (sha256 of the script, the pinned packages and the original)
# redoes the rewrite when any of them changes. A rewrite that cannot run
# (no Python 3.11 or newer for the pinned onnxruntime, say) is a warning:
# the service then reads with the models as fetched, slower.
ocr_fold() {
  local name="$1" kind="$2" folded stamp staging
  folded="$OCR_MODELS_DIR/$name.folded.onnx"
  stamp=$(cat "$OCR_FOLD_SCRIPT" <(printf '%s\n' "${OCR_FOLD_PACKAGES[@]}") "$OCR_MODELS_DIR/$name.onnx" |
    sha256sum | cut -d' ' -f1)
  # Readable by all, like the fetched models: mktemp makes its file 0600,
  # and the service may run as another user (the image's `receipt`), which
  # could then not load PP-OCRv4 at all. Caches made before are fixed here.
  if [ -s "$folded" ] && [ "$(cat "$folded.stamp" 2>/dev/null)" = "$stamp" ]; then
    chmod 0644 "$folded"
    return 0
  fi
  ocr_fold_venv || return 1
  staging=$(mktemp "$OCR_MODELS_DIR/.fold.XXXXXX")
  if ! "$OCR_FOLD_VENV/bin/python" "$OCR_FOLD_SCRIPT" "$OCR_MODELS_DIR/$name.onnx" "$staging" "$kind"; then
    rm -f "$staging"
    return 1
  fi
  chmod 0644 "$staging"
  mv -f "$staging" "$folded"
  echo "$stamp" > "$folded.stamp"
}
for ocr_model in ch_PP-OCRv4_det_infer:det ch_PP-OCRv4_rec_infer:rec; do
  if ! ocr_fold "${ocr_model%:*}" "${ocr_model#*:}"; then
    echo "ocr-models: warning: could not rewrite ${ocr_model%:*}.onnx; PP-OCR reads with it as fetched (slower)" >&2
  fi
done
unset ocr_model
