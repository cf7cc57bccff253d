//! The webhook deliveries' own BullMQ queue, `<QUEUE_NAME>-webhooks`: one
//! job per delivery (a final event for one target), retried by BullMQ with
//! exponential backoff, so a pending delivery survives any process's
//! restart and shows in Bull Board.

use bullmq::JobOptions;
use bullmq::types::BackoffStrategy;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{QueueError, QueueHandle, keep};
use crate::config::{QueueSettings, RetentionSettings, WebhookSettings};

/// BullMQ's job name for deliveries.
pub const DELIVERY_JOB_NAME: &str = "deliver-webhook";

/// What a delivery job carries: the rest is in PostgreSQL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJobData {
    pub delivery_id: Uuid,
}

/// `<QUEUE_NAME>-webhooks`.
pub fn webhook_queue_name(settings: &QueueSettings) -> String {
    format!("{}-webhooks", settings.name)
}

pub(super) fn delivery_options(
    settings: &WebhookSettings,
    retention: &RetentionSettings,
) -> JobOptions {
    JobOptions {
        attempts: Some(settings.attempts.get()),
        backoff: Some(BackoffStrategy::Exponential(
            settings.backoff.as_millis() as u64
        )),
        remove_on_complete: Some(keep(retention.completed_count, retention.completed_age)),
        remove_on_fail: Some(keep(retention.failed_count, retention.failed_age)),
        ..JobOptions::default()
    }
}

impl QueueHandle {
    /// Queue the first run of a delivery. Its job id is derived from the
    /// delivery, so queuing it twice (a sweep racing the first attempt to
    /// queue it) adds it once.
    pub async fn enqueue_delivery(&self, delivery_id: Uuid) -> Result<(), QueueError> {
        self.add_delivery(format!("whk-{delivery_id}"), delivery_id)
            .await
    }

    /// Queue a fresh run of a delivery, with fresh attempts, beside any
    /// run still pending.
    pub async fn redeliver(&self, delivery_id: Uuid) -> Result<(), QueueError> {
        let run = chrono::Utc::now().timestamp_millis();
        self.add_delivery(format!("whk-{delivery_id}-{run}"), delivery_id)
            .await
    }

    /// True while the first run of a delivery is waiting, delayed or under
    /// way (false once it finished, or when Redis does not have it).
    pub async fn delivery_run_pending(&self, delivery_id: Uuid) -> Result<bool, QueueError> {
        use bullmq::JobState;
        let job_id = format!("whk-{delivery_id}");
        let state = self.deadline(self.webhooks.get_job_state(&job_id)).await?;
        Ok(matches!(
            state,
            JobState::Waiting | JobState::Active | JobState::Delayed | JobState::Prioritized
        ))
    }

    async fn add_delivery(&self, job_id: String, delivery_id: Uuid) -> Result<(), QueueError> {
        let options = JobOptions {
            job_id: Some(job_id),
            ..self.delivery_options.clone()
        };
        let add = self
            .webhooks
            .add(DELIVERY_JOB_NAME, DeliveryJobData { delivery_id })
            .options(options)
            .into_future();
        self.deadline(add).await.map(|_| ())
    }
}
