# Build stage: Rust plus the C libraries leptess binds to.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config clang libclang-dev \
      libtesseract-dev libleptonica-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin receipt-ocr

# Runtime: Tesseract with English data, nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libtesseract5 liblept5 tesseract-ocr-eng ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
# The uploads folder exists and belongs to the service's user in the image,
# so a named volume mounted there starts out writable by it.
RUN useradd --system --create-home --home-dir /app receipt \
 && mkdir -p /app/blobs && chown receipt:receipt /app/blobs
COPY --from=build /src/target/release/receipt-ocr /usr/local/bin/receipt-ocr
USER receipt
WORKDIR /app
ENV OMP_THREAD_LIMIT=1 BLOB_STORE=/app/blobs PORT=4000
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:${PORT}/health/ready || exit 1
ENTRYPOINT ["receipt-ocr"]
CMD ["serve"]
