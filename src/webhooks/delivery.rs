//! One attempt at one delivery, apart from BullMQ: load it, send it,
//! record the attempt and where the delivery stands, and say what the
//! queue should do next.

use chrono::Utc;
use uuid::Uuid;

use super::sender::{AttemptReport, Verdict, WebhookSender};
use crate::store::Db;
use crate::store::webhooks::{DeliveryState, NewAttempt};

/// One run's attempt at a delivery.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryAttempt {
    pub delivery_id: Uuid,
    /// 1 for the first attempt of this run.
    pub attempt: u32,
    pub max_attempts: u32,
}

/// What the queue does after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    Done,
    /// Try again after the backoff, while attempts remain.
    Retry(String),
    /// Never again (410, a refused target, a delivery that is gone).
    Stop(String),
}

#[derive(Clone)]
pub struct Deliverer {
    pub db: Db,
    pub sender: WebhookSender,
}

impl Deliverer {
    pub async fn attempt(&self, attempt: DeliveryAttempt) -> NextStep {
        let delivery = match self.db.delivery(attempt.delivery_id).await {
            Ok(Some(delivery)) => delivery,
            Ok(None) => return NextStep::Stop(format!("no delivery {}", attempt.delivery_id)),
            // Nothing was sent: worth another attempt once PostgreSQL is back.
            Err(e) => return NextStep::Retry(e.to_string()),
        };
        // Only a pending delivery is sent (a redelivery reopens it first):
        // a run left beside another, or queued again by a sweep after its
        // first run settled it, ends without sending twice.
        if delivery.state != DeliveryState::Pending.as_str() {
            return NextStep::Done;
        }
        // serde_json writes a Value the same way every time: every attempt
        // sends the same bytes.
        let body = delivery.payload.to_string().into_bytes();
        let attempted_at = Utc::now();
        let report = self
            .sender
            .send(&delivery.url, &delivery.id.to_string(), body)
            .await;
        let state = state_after(&report, attempt);
        let record = NewAttempt {
            delivery_id: delivery.id,
            attempt: attempt.attempt as i32,
            attempted_at,
            status_code: report.status.map(i32::from),
            duration_ms: report.duration.as_millis().min(i32::MAX as u128) as i32,
            error: report.error.clone(),
        };
        if let Err(e) = self.db.record_attempt(&record, state).await {
            tracing::warn!(delivery_id = %delivery.id, error = %e, "could not record a webhook attempt");
        }
        next_step(report)
    }
}

fn state_after(report: &AttemptReport, attempt: DeliveryAttempt) -> DeliveryState {
    match report.verdict {
        Verdict::Delivered => DeliveryState::Delivered,
        Verdict::Gone => DeliveryState::Gone,
        Verdict::Refused => DeliveryState::Failed,
        Verdict::Retry if attempt.attempt >= attempt.max_attempts => DeliveryState::Failed,
        Verdict::Retry => DeliveryState::Pending,
    }
}

fn next_step(report: AttemptReport) -> NextStep {
    let reason = report.error.unwrap_or_default();
    match report.verdict {
        Verdict::Delivered => NextStep::Done,
        Verdict::Gone => NextStep::Stop("the target answered 410 Gone".to_string()),
        Verdict::Refused => NextStep::Stop(reason),
        Verdict::Retry => NextStep::Retry(reason),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn report(status: Option<u16>, verdict: Verdict) -> AttemptReport {
        AttemptReport {
            status,
            duration: Duration::from_millis(5),
            error: None,
            verdict,
        }
    }

    fn attempt(n: u32) -> DeliveryAttempt {
        DeliveryAttempt {
            delivery_id: Uuid::nil(),
            attempt: n,
            max_attempts: 3,
        }
    }

    #[test]
    fn a_failed_attempt_leaves_the_delivery_pending_until_the_last() {
        let failed = report(Some(500), Verdict::Retry);
        assert_eq!(state_after(&failed, attempt(2)), DeliveryState::Pending);
        assert_eq!(state_after(&failed, attempt(3)), DeliveryState::Failed);
    }

    #[test]
    fn gone_and_refused_stop_at_once() {
        assert_eq!(
            next_step(report(Some(410), Verdict::Gone)),
            NextStep::Stop("the target answered 410 Gone".to_string())
        );
        assert!(matches!(
            next_step(report(None, Verdict::Refused)),
            NextStep::Stop(_)
        ));
        assert_eq!(
            state_after(&report(Some(410), Verdict::Gone), attempt(1)),
            DeliveryState::Gone
        );
    }
}
