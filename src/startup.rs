//! Building and running the application for `serve`, `api` and `worker`:
//! connect to every dependency (failing fast with a clear message), start
//! the actor tree where receipts are read, bind the HTTP listener, and
//! shut down gracefully.

use std::time::Duration;

use poem::EndpointExt;
use poem::endpoint::BoxEndpoint;
use ractor::{Actor, ActorRef};
use tokio::net::TcpListener;

use crate::actors::{Supervisor, SupervisorArgs, SupervisorMessage};
use crate::api;
use crate::config::{HttpSettings, ServerLimits, Settings};
use crate::jobs::ReceiptService;
use crate::live::LiveEvents;
use crate::outcomes::ReceiptOutcomes;
use crate::queue::{QueueError, QueueHandle, QueueMetricsLease};
use crate::store::{BlobError, BlobStore, Db, DbError};

/// Which parts of the service this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// HTTP API and OCR workers (the default).
    Serve,
    /// HTTP API only: enqueues, answers status.
    Api,
    /// OCR workers only, with health endpoints on PORT.
    Worker,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Redis(#[from] QueueError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error(
        "could not listen on {address} (check HOST, an address of this machine, and PORT, which another process may be using): {source}"
    )]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the OCR workers failed to start: {0}")]
    Actors(#[source] ractor::SpawnErr),
}

/// A started service: actors running, listener bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    limits: ServerLimits,
    app: BoxEndpoint<'static>,
    /// The actor tree; `None` in an `api` process.
    supervisor: Option<ActorRef<SupervisorMessage>>,
    port: u16,
    shutdown_grace: Duration,
    pub service: ReceiptService,
}

impl Application {
    pub async fn build(settings: Settings, role: Role) -> Result<Self, StartupError> {
        // Bind first: a taken port must fail before any job is fetched.
        let (listener, port) = bind(&settings.http).await?;
        let queue =
            QueueHandle::open(&settings.queue, &settings.retention, &settings.webhooks).await?;
        let db = Db::connect(&settings.database.url, settings.database.max_connections).await?;
        let blobs = BlobStore::connect(&settings.blobs.location).await?;
        let targets = settings.webhooks.urls.0.clone();
        let outcomes = ReceiptOutcomes::new(db.clone(), queue.clone(), targets);
        let service = ReceiptService {
            queue: queue.clone(),
            db: db.clone(),
            blobs: blobs.clone(),
            max_upload_bytes: settings.http.max_upload_bytes,
            max_image_pixels: settings.ocr.engine.max_image_pixels,
            queue_metrics: QueueMetricsLease::start(queue.clone()),
            outcomes: outcomes.clone(),
            live: LiveEvents::new(&settings.queue, queue.clone()),
            allow_private_callbacks: settings.webhooks.allow_private,
            max_pdf_pages: settings.ocr.engine.max_pdf_pages,
            inputs: settings.inputs.clone(),
            pdf_checks: std::sync::Arc::new(tokio::sync::Semaphore::new(
                settings
                    .inputs
                    .max_pdf_checks
                    .min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
        };
        let supervisor = match role {
            Role::Api => None,
            Role::Serve | Role::Worker => {
                queue.set_rate_limit(settings.queue.rate_limit).await?;
                if settings.webhooks.secret.0.is_none() {
                    tracing::warn!("WEBHOOK_SECRET is not set: webhooks are sent unsigned");
                }
                let args = SupervisorArgs {
                    ocr: settings.ocr.clone(),
                    queue_settings: settings.queue.clone(),
                    reconcile: settings.reconcile.clone(),
                    image_keep: settings.blobs.keep(),
                    webhooks: settings.webhooks.clone(),
                    grace: settings.shutdown.grace,
                    db,
                    blobs,
                    queue,
                    outcomes,
                };
                let (supervisor, _) = Actor::spawn(None, Supervisor, args)
                    .await
                    .map_err(StartupError::Actors)?;
                Some(supervisor)
            }
        };
        let app = match (&supervisor, role) {
            (Some(supervisor), Role::Worker) => {
                api::worker_routes(service.clone(), supervisor.clone()).boxed()
            }
            _ => api::routes(service.clone(), &settings.http).boxed(),
        };
        Ok(Self {
            listener,
            limits: settings.http.limits.clone(),
            app,
            supervisor,
            port,
            service,
            shutdown_grace: settings.shutdown.grace,
        })
    }

    /// The root of the actor tree (health checks, tests); `None` in `api`.
    pub fn supervisor(&self) -> Option<ActorRef<SupervisorMessage>> {
        self.supervisor.clone()
    }

    /// The bound port (useful with PORT=0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve until `shutdown` resolves; then, at the same time, stop taking
    /// requests and stop the actors (no job starts, active ones get the
    /// grace, then go back to the queue). Returns within the grace plus a
    /// few seconds.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let http_grace = self.shutdown_grace.min(Duration::from_secs(10));
        let server = crate::server::serve(
            self.listener,
            self.app,
            self.limits,
            async move {
                let mut stopping = stopping;
                let _ = stopping.wait_for(|stop| *stop).await;
            },
            http_grace,
        );
        tokio::pin!(server);
        let early = tokio::select! {
            served = &mut server => Some(served),
            () = shutdown => None,
        };
        let _ = stop.send(true);
        let actors = async {
            if let Some(supervisor) = &self.supervisor {
                let bound = self.shutdown_grace + Duration::from_secs(5);
                supervisor.stop_and_wait(None, Some(bound)).await.ok();
            }
        };
        match early {
            Some(served) => {
                actors.await;
                served
            }
            None => tokio::join!(server, actors).0,
        }
    }
}

async fn bind(settings: &HttpSettings) -> Result<(TcpListener, u16), StartupError> {
    let address = format!("{}:{}", settings.host, settings.port);
    let listener = TcpListener::bind(address.clone())
        .await
        .map_err(|source| StartupError::Bind { address, source })?;
    let port = listener
        .local_addr()
        .map_or(settings.port, |bound| bound.port());
    Ok((listener, port))
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when
/// this is called, not when the future is first polled: call it before
/// the workers start, so a SIGTERM that comes while the service is still
/// starting up is not the default one that kills it on the spot.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let (interrupt, terminate) = signals;
            tokio::select! { () = wait(interrupt) => {}, () = wait(terminate) => {} }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: no new jobs; active ones get SHUTDOWN_GRACE_MS");
    }
}
