//! Integration tests against real Redis, PostgreSQL and Tesseract, through
//! real HTTP on random ports. One binary, so the crate links once.

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod cancel_retry;
mod docs_and_health;
mod faults;
mod helpers;
mod inputs;
mod job_control;
mod node_interop;
mod outage;
mod private_servers;
mod processes;
mod queue_control;
mod read_receipt;
mod receipt_listing;
mod reconciler;
mod shutdown;
mod startup;
mod subscription;
mod supervision;
