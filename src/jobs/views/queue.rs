//! The queue overview as clients see it: counts per state, pause, the rate
//! limit in force, and the connected workers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::queue::{ConnectedWorker, JobCounts, QueueOverview, RateLimitStatus};

macro_rules! view {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            PartialEq,
            Serialize,
            Deserialize,
            poem_openapi::Object,
            async_graphql::SimpleObject,
        )]
        #[serde(rename_all = "camelCase")]
        #[oai(rename_all = "camelCase")]
        pub struct $name { $($body)* }
    };
}

view! {
    /// The same numbers as BullMQ's `getJobCounts`.
    pub struct JobCountsView {
        pub waiting: u64,
        pub active: u64,
        pub completed: u64,
        pub failed: u64,
        pub delayed: u64,
        pub prioritized: u64,
        /// Waiting jobs held in BullMQ's `paused` list while the queue is paused.
        pub paused: u64,
        pub waiting_children: u64,
    }
}

view! {
    /// The global rate limit in force (read back from Redis).
    pub struct RateLimitView {
        /// Jobs per window; 0 = no limit.
        pub max: u64,
        pub duration_ms: u64,
        /// Milliseconds until jobs may start again; 0 when they may start now.
        pub wait_ms: u64,
    }
}

view! {
    /// A worker connected to the queue (from Redis's `CLIENT LIST`).
    pub struct WorkerView {
        pub name: String,
        /// `host:port` of its Redis connection.
        pub address: String,
        /// When its connection opened, to the second.
        #[oai(nullable)]
        pub started_at: Option<DateTime<Utc>>,
        /// Jobs it has processed; null: BullMQ keeps no per-worker count
        /// (each job records its worker in `processedBy` instead).
        #[oai(nullable)]
        pub jobs_processed: Option<u64>,
    }
}

view! {
    /// The queue at one moment.
    pub struct QueueView {
        pub counts: JobCountsView,
        /// True while the queue is paused: uploads are accepted, no job starts.
        pub paused: bool,
        pub rate_limit: RateLimitView,
        pub workers: Vec<WorkerView>,
    }
}

impl QueueView {
    pub(crate) fn from_overview(overview: &QueueOverview) -> Self {
        Self {
            counts: counts(overview.counts),
            paused: overview.paused,
            rate_limit: rate_limit(overview.rate_limit),
            workers: overview.workers.iter().map(worker).collect(),
        }
    }
}

fn counts(c: JobCounts) -> JobCountsView {
    JobCountsView {
        waiting: c.waiting,
        active: c.active,
        completed: c.completed,
        failed: c.failed,
        delayed: c.delayed,
        prioritized: c.prioritized,
        paused: c.paused,
        waiting_children: c.waiting_children,
    }
}

fn rate_limit(r: RateLimitStatus) -> RateLimitView {
    RateLimitView {
        max: r.max,
        duration_ms: r.duration_ms,
        wait_ms: r.wait_ms,
    }
}

fn worker(w: &ConnectedWorker) -> WorkerView {
    WorkerView {
        name: w.name.clone(),
        address: w.address.clone(),
        started_at: w.started_at,
        jobs_processed: None,
    }
}
