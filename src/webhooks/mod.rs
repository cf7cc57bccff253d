//! Webhooks: telling clients when a receipt's job reaches a final state.
//!
//! - [`event`]: the body, `{type, timestamp, data}` (Standard Webhooks).
//! - [`signing`]: `webhook-signature`, HMAC-SHA256 with WEBHOOK_SECRET.
//! - [`target`]: which URLs and addresses a webhook may go to.
//! - [`sender`]: one attempt over HTTP, safely (no redirects, no private
//!   addresses, a timeout, a bounded read).
//! - [`delivery`]: one attempt of a stored delivery, recorded.
//!
//! Deliveries are written with the outcome they announce (`outcomes`),
//! queued on their own BullMQ queue (`queue`) and sent by the delivery
//! worker (`actors::webhook_worker`).

pub mod delivery;
pub mod event;
pub mod sender;
pub mod signing;
pub mod target;

pub use event::{EventKind, WebhookPayload};
pub use signing::{SecretError, WebhookSecret};
pub use target::{TargetError, WebhookUrl};
