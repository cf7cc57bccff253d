//! The supervision tree that reads receipts (see [`supervisor`] for its
//! drawing): the OCR worker pool (a ractor factory), the BullMQ worker, the
//! webhook delivery worker and the reconciler.

pub mod ocr_pool;
pub mod ocr_worker;
pub mod queue_worker;
pub mod reconciler;
pub mod supervisor;
pub mod webhook_worker;

pub use supervisor::{Supervisor, SupervisorArgs, SupervisorMessage, SupervisorStats};
