//! The supervision tree that reads receipts (see [`supervisor`] for its
//! drawing): the OCR worker pool (a ractor factory) and the BullMQ worker.

pub mod ocr_pool;
pub mod ocr_worker;
pub mod queue_worker;
pub mod reconciler;
pub mod supervisor;

pub use supervisor::{Supervisor, SupervisorArgs, SupervisorMessage, SupervisorStats};
