//! receipt-ocr: a job service that reads shop receipts.
//!
//! Clients upload an image over HTTP and get a job id at once; OCR workers
//! read the receipt in the background and store the result in PostgreSQL.
//!
//! Layout:
//! - [`config`]: typed settings from environment, `.env` and flags.
//! - [`ocr`]: preprocessing, Tesseract and the text → receipt parser.
//! - [`eval`]: the `eval DIR` command that scores the pipeline on labelled receipts.
pub mod eval;
pub mod ocr;
