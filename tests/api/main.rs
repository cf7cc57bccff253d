//! Integration tests against real Redis, PostgreSQL and Tesseract, through
//! real HTTP on random ports. One binary, so the crate links once.

#[path = "../support/mod.rs"]
mod support;

mod api_keys;
mod bad_input;
mod bullboard;
mod cancel_retry;
mod cli;
mod cluster;
mod dashboard;
mod docs_and_health;
mod events;
mod faults;
mod graphql_limits;
mod helpers;
mod inputs;
mod job_control;
mod logs_and_readiness;
mod metrics;
mod node_interop;
mod openapi_contract;
mod otlp;
mod outage;
mod postgres_tls;
mod private_servers;
mod processes;
mod queue_control;
mod read_receipt;
mod receipt_listing;
mod receiver;
mod reconciler;
mod remote;
mod s3;
mod shutdown;
mod slow_clients;
mod stalls;
mod startup;
mod startup_race;
mod subscription;
mod supervision;
mod traces;
mod webhooks;
