//! Webhooks: telling clients when a receipt's job reaches a final state.
//!
//! - the body, its signing and the allowed targets are values of the job
//!   contract (`job::webhook`), re-exported here;
//! - [`sender`]: one attempt over HTTP, safely (no redirects, no private
//!   addresses, a timeout, a bounded read).
//! - [`delivery`]: one attempt of a stored delivery, recorded.
//!
//! Deliveries are written with the outcome they announce (`outcomes`),
//! queued on their own BullMQ queue (`queue`) and sent by the delivery
//! worker (`actors::webhook_worker`).

pub mod delivery;
pub mod sender;

pub use crate::job::webhook::{
    EventKind, SecretError, TargetError, WebhookPayload, WebhookSecret, WebhookUrl, event, signing,
    target,
};
