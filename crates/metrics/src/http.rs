//! The HTTP endpoints (axum, as the Schema Registry's): `/metrics` in the OpenMetrics text
//! format Prometheus scrapes, `/healthz` (the process serves: 200) and `/readyz` (what the
//! process depends on answers, for a broker its storage: 200; otherwise 503 with the reason).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::Metrics;

/// The content type of `/metrics` (what `prometheus_client`'s text encoder writes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long `/readyz` waits for storage before answering 503: a probe must answer quickly, and
/// a storage slower than this is not serving clients either.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` asks (within [`READY_TIMEOUT`]).
#[async_trait]
pub trait Readiness: Send + Sync + 'static {
    /// `Err(reason)` when the process cannot serve clients now.
    async fn ready(&self) -> Result<(), String>;
}

/// Something with nothing to wait for (the proxy, whose upstream reports its own health).
pub struct AlwaysReady;

#[async_trait]
impl Readiness for AlwaysReady {
    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    readiness: Arc<dyn Readiness>,
}

/// `/metrics`, `/healthz` and `/readyz`.
pub fn router(metrics: Arc<Metrics>, readiness: Arc<dyn Readiness>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Shared { metrics, readiness })
}

/// Serves the endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    metrics: Arc<Metrics>,
    readiness: Arc<dyn Readiness>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "metrics listening");
    }
    axum::serve(listener, router(metrics, readiness)).with_graceful_shutdown(shutdown).await
}

async fn scrape(State(shared): State<Shared>) -> Response {
    match shared.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::warn!(%error, "encoding metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed\n").into_response()
        }
    }
}

async fn ready(State(shared): State<Shared>) -> Response {
    let checked = tokio::time::timeout(READY_TIMEOUT, shared.readiness.ready()).await;
    let checked = checked.unwrap_or_else(|_| Err(format!("no answer within {READY_TIMEOUT:?}")));
    match checked {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => {
            tracing::debug!(%reason, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")).into_response()
        }
    }
}
