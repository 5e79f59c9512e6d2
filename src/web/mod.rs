//! HTTP endpoints served by `huytk serve`: `/healthz` (the process runs),
//! `/readyz` (the database answers), `/metrics` (Prometheus text). The
//! operator console and the JSON API will live here too (issue 4).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::store::{Store, StoreError};

/// The routes.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(store)
}

async fn readyz(State(store): State<Store>) -> impl IntoResponse {
    match store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")),
    }
}

async fn metrics(State(store): State<Store>) -> impl IntoResponse {
    match render_metrics(&store).await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            format!("# database: {e}\n"),
        ),
    }
}

/// The Prometheus exposition of the desk's counts.
pub async fn render_metrics(store: &Store) -> Result<String, StoreError> {
    let mut out = String::new();
    out.push_str("# HELP huytk_requests Requests by state.\n# TYPE huytk_requests gauge\n");
    for (state, n) in store.group_counts("requests", "state").await? {
        out.push_str(&format!("huytk_requests{{state=\"{state}\"}} {n}\n"));
    }
    out.push_str("# HELP huytk_messages Stored messages by processing status.\n# TYPE huytk_messages gauge\n");
    for (status, n) in store.group_counts("raw_messages", "status").await? {
        out.push_str(&format!("huytk_messages{{status=\"{status}\"}} {n}\n"));
    }
    out.push_str(
        "# HELP huytk_mails Outgoing mails by delivery state.\n# TYPE huytk_mails gauge\n",
    );
    for (state, n) in store.group_counts("outbox", "state").await? {
        out.push_str(&format!("huytk_mails{{state=\"{state}\"}} {n}\n"));
    }
    let oldest = store.oldest_open_request_ms().await?;
    out.push_str("# HELP huytk_queue_age_seconds Age of the oldest request waiting for the desk or the citizen.\n# TYPE huytk_queue_age_seconds gauge\n");
    out.push_str(&format!(
        "huytk_queue_age_seconds {}\n",
        oldest.map_or(0, |ms| (crate::store::now_ms() - ms).max(0) / 1000)
    ));
    Ok(out)
}
