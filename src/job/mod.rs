//! The receipt job contract that the HTTP side and the worker side share:
//! what a job carries, what it yields, the states it and its receipt go
//! through, and how it fails.
//!
//! This module is a leaf: it depends on no other module of this crate, so
//! both sides can depend on it without depending on each other.
//!
//! - [`ReceiptJobData`]: the job's data in the BullMQ job hash
//! - [`ReceiptResult`]: what a completed job yields (its BullMQ return value)
//! - [`JobState`], [`ReceiptStatus`]: typed states
//! - [`JobError`]: a failed attempt, permanent or worth retrying
//! - [`Schedule`]: a job's priority and delay, checked from a client's fields
//! - [`new_job_id`]: unguessable job ids

mod data;
mod error;
mod id;
mod result;
mod schedule;
mod state;
pub mod webhook;

pub use data::{JOB_NAME, LATEST_RUN, ReceiptJobData};
pub use error::{CANCELLED_REASON, FailureClass, JobError};
pub use id::{is_plausible_job_id, new_job_id};
pub use result::{Confidence, FieldBoxes, ReceiptBox, ReceiptItem, ReceiptResult};
pub use schedule::{HIGHEST_PRIORITY, InvalidField, LOWEST_PRIORITY, Schedule, ScheduleRequest};
pub use state::{JobState, ReceiptStatus, UnknownState};
