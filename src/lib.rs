//! receipt-ocr: a job service that reads shop receipts.
//!
//! Clients upload an image over HTTP and get a job id at once; OCR workers
//! read the receipt in the background and store the result in PostgreSQL.
//!
//! Layout:
//! - [`config`]: typed settings from environment, `.env` and flags.
//! - [`startup`]: builds and runs the application (`serve`, `api`, `worker`).
//! - [`actors`]: the supervision tree: queue, rate limiter, OCR workers.
//! - [`api`]: REST (poem-openapi, Swagger UI) and GraphQL.
//! - [`jobs`]: the service functions both APIs call.
//! - [`ocr`]: preprocessing, Tesseract and the text → receipt parser.
//! - [`store`]: PostgreSQL (diesel-async) and the blob store.
//! - [`client`]: the `upload` and `status` client commands.
//! - [`eval`]: the `eval DIR` command that scores the pipeline on labelled receipts.
//! - [`telemetry`]: logging set-up.
pub mod actors;
pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod eval;
pub mod jobs;
pub mod ocr;
pub mod startup;
pub mod store;
pub mod telemetry;
