//! receipt-ocr: a job service that reads shop receipts.
//!
//! Clients upload an image over HTTP and get a job id at once; OCR workers
//! read the receipt in the background and store the result in PostgreSQL.
//!
//! Layout:
//! - [`config`]: typed settings from environment, `.env` and flags, in sections.
//! - [`startup`]: builds and runs the application (`serve`, `api`, `worker`).
//! - [`server`]: the HTTP server under poem (header, idle and connection limits).
//! - [`job`]: the job contract both sides share (a leaf: it imports nothing of ours).
//! - HTTP side: [`api`] (REST with Swagger UI, GraphQL) → [`jobs`] (the
//!   service functions both APIs call) → [`queue`] (BullMQ: enqueue, lookups).
//! - Worker side: [`actors`] (the supervision tree: BullMQ worker, OCR pool)
//!   → [`pipeline`] (one receipt job top to bottom) → [`ocr`] (preprocessing,
//!   Tesseract, the text → receipt parser).
//! - [`outcomes`]: the one home of a receipt's final state, which writes it
//!   and the [`webhooks`] deliveries it raises; the delivery worker sends them.
//! - [`live`]: one reader per process of the queue's events stream, fanned
//!   out to live subscribers (SSE, the GraphQL subscription).
//! - [`inputs`]: PDF and HEIC/AVIF uploads (sniffing, upload checks, reading).
//! - [`store`]: PostgreSQL (diesel-async) and the blob store, used by both sides.
//! - [`client`]: the `upload` and `status` client commands.
//! - [`eval`]: the `eval DIR` command that scores the pipeline on labelled receipts.
//! - [`bench`]: `bench queue`, the cost of our queue path per job, beside BullMQ's.
//! - [`telemetry`]: logs, traces (OpenTelemetry) and metrics (Prometheus).
//! - [`pauses`]: doubling pauses between tries of a dependency that is down.
pub mod actors;
pub mod api;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod eval;
pub mod inputs;
pub mod job;
pub mod jobs;
pub mod live;
pub mod ocr;
pub mod outcomes;
pub mod pauses;
pub mod pipeline;
pub mod queue;
pub mod server;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod webhooks;
