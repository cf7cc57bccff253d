//! The GraphQL HTTP endpoints: `POST /graphql` (one request, or a batch of
//! at most GRAPHQL_MAX_BATCH) and the WebSocket at `/graphql/ws`, both run
//! as the [`Caller`] the request guard identified.

use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{BatchRequest, BatchResponse, ErrorExtensions};
use async_graphql_poem::{
    GraphQLBatchRequest, GraphQLBatchResponse, GraphQLProtocol, GraphQLWebSocket,
};
use poem::web::websocket::WebSocket;
use poem::{Endpoint, FromRequest, IntoResponse, Request, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ReceiptSchema;
use super::limits::limit_error;
use crate::config::ApiKeys;
use crate::jobs::Caller;

/// The caller the request guard attached; every route behind it has one.
fn caller_of(request: &Request) -> poem::Result<Caller> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| {
            poem::Error::from_string(
                "the request reached GraphQL without passing the request guard",
                poem::http::StatusCode::INTERNAL_SERVER_ERROR,
            )
        })
}

/// `POST /graphql`.
pub struct GraphqlEndpoint {
    pub schema: ReceiptSchema,
    pub max_batch: usize,
}

impl Endpoint for GraphqlEndpoint {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let caller = caller_of(&request)?;
        let (request, mut body) = request.split();
        let batch = GraphQLBatchRequest::from_request(&request, &mut body)
            .await?
            .0;
        let size = match &batch {
            BatchRequest::Single(_) => 1,
            BatchRequest::Batch(requests) => requests.len(),
        };
        if size > self.max_batch {
            let error = limit_error(
                "batch_too_large",
                format!(
                    "The batch holds {size} queries; the limit is {} (GRAPHQL_MAX_BATCH). Send fewer at once.",
                    self.max_batch
                ),
            );
            let refused = async_graphql::Response::from_errors(vec![error]);
            return Ok(GraphQLBatchResponse(BatchResponse::Single(refused)).into_response());
        }
        let answers = self.schema.execute_batch(batch.data(caller)).await;
        Ok(GraphQLBatchResponse(answers).into_response())
    }
}

/// `GET /graphql/ws`: subscriptions (graphql-transport-ws or graphql-ws).
pub struct SubscriptionEndpoint {
    pub schema: ReceiptSchema,
    pub keys: ApiKeys,
    /// GRAPHQL_MAX_SUBSCRIPTIONS: open at once on one connection.
    pub max_subscriptions: usize,
}

/// A connection's room for subscriptions: each open one holds a slot,
/// given back when it completes or the client stops it.
pub struct SubscriptionSlots {
    free: Arc<Semaphore>,
    limit: usize,
}

impl SubscriptionSlots {
    fn new(limit: usize) -> Self {
        Self {
            free: Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))),
            limit,
        }
    }

    /// A slot for one more subscription, or the error that refuses it.
    pub fn take(&self) -> async_graphql::Result<OwnedSemaphorePermit> {
        self.free.clone().try_acquire_owned().map_err(|_| {
            let message = format!(
                "This connection holds {} subscriptions, the limit (GRAPHQL_MAX_SUBSCRIPTIONS). \
                 Stop one, or open another connection.",
                self.limit
            );
            async_graphql::Error::new(message)
                .extend_with(|_, extensions| extensions.set("code", "too_many_subscriptions"))
        })
    }
}

impl Endpoint for SubscriptionEndpoint {
    type Output = Response;

    /// A browser cannot set headers on a WebSocket: when the upgrade came
    /// without a key (the request guard lets it through only then), the
    /// key is wanted as `apiKey` in the `connection_init` payload, as
    /// GraphQL WebSocket clients send it.
    async fn call(&self, request: Request) -> poem::Result<Response> {
        let from_header = request.extensions().get::<Caller>().cloned();
        let (request, mut body) = request.split();
        let websocket = WebSocket::from_request(&request, &mut body).await?;
        let protocol = GraphQLProtocol::from_request(&request, &mut body).await?;
        let schema = self.schema.clone();
        let keys = self.keys.clone();
        let max_subscriptions = self.max_subscriptions;
        Ok(websocket
            .protocols(ALL_WEBSOCKET_PROTOCOLS)
            .on_upgrade(move |stream| {
                GraphQLWebSocket::new(stream, schema, protocol)
                    .on_connection_init(move |payload| async move {
                        let caller = from_header.or_else(|| {
                            let key = payload["apiKey"].as_str()?;
                            keys.identify(key).map(|key| Caller::with_key(key, &keys))
                        });
                        let Some(caller) = caller else {
                            return Err(async_graphql::Error::new(
                                "unauthorized: send a valid API key as `apiKey` in the \
                                 connection_init payload (or the X-Api-Key header)",
                            ));
                        };
                        let mut data = async_graphql::Data::default();
                        data.insert(caller);
                        data.insert(SubscriptionSlots::new(max_subscriptions));
                        Ok(data)
                    })
                    .serve()
            })
            .into_response())
    }
}
