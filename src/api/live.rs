//! Live updates of a job over HTTP: Server-Sent Events at
//! `GET /api/job/{jobId}/events` (REST), and the GraphQL WebSocket's
//! handshake, which takes the API key from `connection_init` as browsers'
//! GraphQL clients send it (they cannot set headers on a WebSocket).

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use poem::web::sse::Event;
use poem_openapi::param::Path;
use poem_openapi::payload::EventStream;
use poem_openapi::{Object, OpenApi, Tags};

use super::errors::LookupError;
use crate::jobs::{Caller, JobStatusView, LiveUpdate, ReceiptService};

/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Tags)]
enum Tag {
    /// Follow a job live instead of polling it.
    Live,
}

/// One update of a followed job: its status, as `GET /api/job/{jobId}`
/// answers it, and where in the queue's events stream it came from.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct JobUpdate {
    #[oai(flatten)]
    pub status: JobStatusView,
    /// The Redis stream entry (`<unix ms>-<n>`) the update came from; also
    /// the SSE `id`. Null for the status read when the stream opened.
    #[oai(nullable)]
    pub event_id: Option<String>,
}

pub struct LiveApi {
    pub service: ReceiptService,
}

#[OpenApi]
impl LiveApi {
    /// The job's status now, then each change as it happens (every progress
    /// step and state, from whichever worker process runs it), as
    /// Server-Sent Events (`curl -N`); the stream ends after `completed`,
    /// `failed` or `cancelled`. With API keys on, send `X-Api-Key`.
    #[oai(path = "/api/job/:job_id/events", method = "get", tag = "Tag::Live")]
    async fn events(
        &self,
        caller: poem::web::Data<&Caller>,
        job_id: Path<String>,
    ) -> Result<EventStream<BoxStream<'static, JobUpdate>>, LookupError> {
        let updates = self.service.watch_job(&caller, &job_id).await?;
        let updates = updates.map(JobUpdate::from).boxed();
        Ok(EventStream::new(updates)
            .keep_alive(KEEP_ALIVE)
            .to_event(sse_event))
    }
}

impl From<LiveUpdate> for JobUpdate {
    fn from(update: LiveUpdate) -> Self {
        Self {
            status: update.status,
            event_id: update.event_id,
        }
    }
}

fn sse_event(update: JobUpdate) -> Event {
    use poem_openapi::types::ToJSON;
    let data = update.to_json_string();
    let event = Event::message(data);
    match update.event_id {
        Some(id) => event.id(id),
        None => event,
    }
}
