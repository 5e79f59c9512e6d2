//! The console's HTTP server, with the limits a server on a network needs:
//! a client must send its request headers within `header_timeout_seconds`,
//! no connection lives past `connection_seconds`, and at most
//! `max_connections` are open (more are closed at once). Half-open and
//! slow (slowloris) connections therefore cost a bounded amount, and the
//! operators' pages keep answering under them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::WebConfig;

/// Serves `router` on `listener` until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    web: &WebConfig,
    stop: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(web.max_connections.max(1)));
    let header_timeout = Duration::from_secs(web.header_timeout_seconds.max(1));
    let lifetime = Duration::from_secs(web.connection_seconds.max(1));
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many open");
            drop(stream);
            continue;
        };
        let router = router.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |mut req| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let mut router = router.clone();
                async move { tower::Service::call(&mut router, req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(lifetime, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "connection ended"),
                Err(_) => tracing::debug!(%peer, "connection closed: lifetime over"),
            }
        });
    }
}
