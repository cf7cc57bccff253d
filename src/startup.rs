//! Building and running the application for `serve`, `api` and `worker`:
//! connect to every dependency (failing fast with a clear message), start
//! the actor tree, bind the HTTP listener, and shut down gracefully.

use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{EndpointExt, Route, Server, get, handler};
use ractor::{Actor, ActorRef};

use crate::actors::queue::{QueueError, check_redis};
use crate::actors::supervisor::{SupervisorMessage, SupervisorStats};
use crate::actors::{Supervisor, SupervisorArgs};
use crate::api;
use crate::config::{ConfigError, Settings};
use crate::jobs::ReceiptService;
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
    Config(#[from] ConfigError),
    #[error(transparent)]
    Redis(#[from] QueueError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error("could not listen on {address}: {reason} (is another process using PORT?)")]
    Bind { address: String, reason: String },
    #[error("the actor system failed to start: {0}")]
    Actors(String),
}

/// A started service: actors running, listener bound, not yet serving.
pub struct Application {
    acceptor: TcpAcceptor,
    app: poem::endpoint::BoxEndpoint<'static>,
    supervisor: ActorRef<SupervisorMessage>,
    port: u16,
    shutdown_grace: Duration,
    pub service: ReceiptService,
}

impl Application {
    pub async fn build(settings: Settings, role: Role) -> Result<Self, StartupError> {
        settings.validate()?;
        let settings = Arc::new(settings);
        // Bind first: a taken port must fail before any job is fetched.
        let (acceptor, port) = bind(&settings).await?;
        check_redis(&settings).await?;
        let db = Db::connect(&settings.database_url).await?;
        let blobs = BlobStore::open(&settings.blob_store)?;
        let args = SupervisorArgs {
            settings: settings.clone(),
            db: db.clone(),
            blobs: blobs.clone(),
            run_workers: role != Role::Api,
        };
        let actors_failed = |e: String| StartupError::Actors(e);
        let (supervisor, _) = Actor::spawn(None, Supervisor, args)
            .await
            .map_err(|e| actors_failed(e.to_string()))?;
        let queue = ractor::call!(supervisor, SupervisorMessage::QueueHandle)
            .map_err(|e| actors_failed(e.to_string()))?;
        let max_upload_bytes = settings.max_upload_bytes;
        let service = ReceiptService {
            queue,
            db,
            blobs,
            max_upload_bytes,
        };
        let app = match role {
            Role::Worker => worker_routes(service.clone(), supervisor.clone())
                .map_to_response()
                .boxed(),
            _ => api::routes(service.clone(), &settings)
                .map_to_response()
                .boxed(),
        };
        let shutdown_grace = Duration::from_millis(settings.shutdown_grace_ms);
        Ok(Self {
            acceptor,
            app,
            supervisor,
            port,
            service,
            shutdown_grace,
        })
    }

    /// The root of the actor tree (health checks, tests).
    pub fn supervisor(&self) -> ActorRef<SupervisorMessage> {
        self.supervisor.clone()
    }

    /// The bound port (useful with PORT=0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve until `shutdown` resolves, then stop taking requests, let
    /// active jobs finish, and stop the actors.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.app, shutdown, Some(Duration::from_secs(10)))
            .await;
        // The queue and then the OCR workers each get the grace period.
        let actors_deadline = self.shutdown_grace * 2 + Duration::from_secs(10);
        self.supervisor
            .stop_and_wait(None, Some(actors_deadline))
            .await
            .ok();
        served
    }
}

async fn bind(settings: &Settings) -> Result<(TcpAcceptor, u16), StartupError> {
    let address = format!("{}:{}", settings.host, settings.port);
    let acceptor = TcpListener::bind(address.clone())
        .into_acceptor()
        .await
        .map_err(|e| StartupError::Bind {
            address,
            reason: e.to_string(),
        })?;
    // A bound TCP acceptor has one local address.
    let port = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().map(|a| a.port()))
        .unwrap_or(settings.port);
    Ok((acceptor, port))
}

/// A worker process serves only its health on PORT.
fn worker_routes(
    service: ReceiptService,
    supervisor: ActorRef<SupervisorMessage>,
) -> impl poem::Endpoint {
    Route::new()
        .at("/health/live", get(live))
        .at("/health/ready", get(worker_ready))
        .at("/metrics", get(worker_metrics))
        .data(service)
        .data(supervisor)
}

#[handler]
fn live() -> poem::web::Json<serde_json::Value> {
    poem::web::Json(serde_json::json!({ "status": "ok" }))
}

#[handler]
async fn worker_ready(
    service: poem::web::Data<&ReceiptService>,
    supervisor: poem::web::Data<&ActorRef<SupervisorMessage>>,
) -> poem::Response {
    use poem::IntoResponse;
    let stats: Option<SupervisorStats> = ractor::call!(supervisor.0, SupervisorMessage::Stats).ok();
    let body = |status: String| {
        let workers = stats.map(|s| s.ocr_workers).unwrap_or(0);
        let restarts = stats.map(|s| s.restarts).unwrap_or(0);
        let rate_limit = stats.and_then(|s| s.rate_limit).map(|r| {
            serde_json::json!({ "max": r.max, "durationMs": r.duration_ms, "waitMs": r.wait_ms })
        });
        poem::web::Json(serde_json::json!({
            "status": status, "ocrWorkers": workers, "restarts": restarts, "rateLimit": rate_limit,
        }))
    };
    let problem = match service.readiness().await {
        Err(e) => Some(e.to_string()),
        Ok(()) if stats.is_none_or(|s| s.ocr_workers == 0) => {
            Some("no OCR worker is running (they are restarting)".to_string())
        }
        Ok(()) => None,
    };
    match problem {
        None => body("ok".into()).into_response(),
        Some(problem) => body(problem)
            .with_status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
            .into_response(),
    }
}

#[handler]
async fn worker_metrics(service: poem::web::Data<&ReceiptService>) -> poem::Response {
    use poem::IntoResponse;
    match service.metrics().await {
        Ok(text) => text.into_response(),
        Err(e) => e
            .to_string()
            .with_status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
            .into_response(),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down: finishing active jobs");
}
