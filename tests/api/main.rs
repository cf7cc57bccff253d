//! Integration tests against real Redis, PostgreSQL and Tesseract, through
//! real HTTP on random ports. One binary, so the crate links once.

#[path = "../support/mod.rs"]
mod support;

mod api_keys;
mod bad_input;
mod cancel_retry;
mod docs_and_health;
mod graphql_limits;
mod helpers;
mod job_control;
mod node_interop;
mod openapi_contract;
mod outage;
mod processes;
mod queue_control;
mod read_receipt;
mod receipt_listing;
mod reconciler;
mod shutdown;
mod slow_clients;
mod startup;
mod startup_race;
mod subscription;
mod supervision;
