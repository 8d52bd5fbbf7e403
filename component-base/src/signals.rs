//! Graceful shutdown on SIGTERM or SIGINT, as upstream components handle them.

use tokio::signal::unix::{signal, SignalKind};

/// Completes when the process receives SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
                _ = int.recv() => tracing::info!("received SIGINT, shutting down"),
            }
        }
        _ => {
            tracing::warn!("could not install signal handlers; waiting for ctrl-c");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
