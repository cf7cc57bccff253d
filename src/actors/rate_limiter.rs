//! The RateLimiterActor: owns the global limit on job starts.
//!
//! The limit lives in Redis, in the queue's `meta` hash (`max`, `duration`)
//! where BullMQ's `moveToActive` script enforces it atomically: every worker
//! process, ours or a Node BullMQ worker, draws from the same window. This
//! actor writes the configured limit at start-up and answers status queries.

use std::sync::Arc;

use bullmq::options::RedisConnectionOptions;
use bullmq::{Queue, QueueOptions, RateLimiterOptions};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::config::Settings;

/// The limit as configured, and how long until the current window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// Jobs per window; 0 = no limit.
    pub max: u64,
    pub duration_ms: u64,
    /// Milliseconds until jobs may start again; 0 when not limited now.
    pub wait_ms: u64,
}

pub enum RateLimiterMessage {
    Status(RpcReplyPort<Result<RateLimitStatus, String>>),
}

pub struct RateLimiterActor;

pub struct RateLimiterState {
    queue: Queue,
    max: u64,
    duration_ms: u64,
}

/// The limiter BullMQ's worker passes to its scripts; `None` when off.
pub fn limiter_options(settings: &Settings) -> Option<RateLimiterOptions> {
    (settings.ocr_rate_max > 0).then(|| RateLimiterOptions {
        max: settings.ocr_rate_max,
        duration: settings.ocr_rate_duration_ms,
    })
}

impl Actor for RateLimiterActor {
    type Msg = RateLimiterMessage;
    type State = RateLimiterState;
    type Arguments = Arc<Settings>;

    async fn pre_start(
        &self,
        _me: ActorRef<Self::Msg>,
        settings: Arc<Settings>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let options = QueueOptions::new()
            .connection(RedisConnectionOptions::new().url(settings.redis_url.clone()))
            .prefix(settings.queue_prefix.clone());
        let queue = Queue::with_options(&settings.queue_name, options).await?;
        let (max, duration_ms) = (settings.ocr_rate_max, settings.ocr_rate_duration_ms);
        if max > 0 {
            queue.set_global_rate_limit(max, duration_ms).await?;
        } else {
            queue.remove_global_rate_limit().await?;
        }
        tracing::info!(max, duration_ms, "global rate limit set");
        Ok(RateLimiterState {
            queue,
            max,
            duration_ms,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let RateLimiterMessage::Status(reply) = message;
        let ttl = if state.max == 0 {
            Ok(0)
        } else {
            state
                .queue
                .get_rate_limit_ttl(Some(state.max))
                .await
                .map_err(|e| e.to_string())
        };
        let status = ttl.map(|ttl| RateLimitStatus {
            max: state.max,
            duration_ms: state.duration_ms,
            wait_ms: ttl.max(0) as u64,
        });
        let _ = reply.send(status);
        Ok(())
    }
}
