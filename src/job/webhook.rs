//! The values a webhook is made of, shared by the settings, the store and
//! the sender (the `webhooks` module):
//!
//! - [`event`]: the body, `{type, timestamp, data}` (Standard Webhooks).
//! - [`signing`]: `webhook-signature`, HMAC-SHA256 with WEBHOOK_SECRET.
//! - [`target`]: which URLs and addresses a webhook may go to.

pub mod event;
pub mod signing;
pub mod target;

pub use event::{EventKind, WebhookPayload};
pub use signing::{SecretError, WebhookSecret};
pub use target::{TargetError, WebhookUrl};
