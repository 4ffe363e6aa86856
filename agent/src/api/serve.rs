//! Binding the API's sockets and serving them until shutdown.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;

use crate::daemon::Daemon;

/// A socket the API could not bind.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {what}: {source}")]
pub struct BindError {
    /// The address or path.
    pub what: String,
    /// Why.
    pub source: std::io::Error,
}

/// Binds every configured socket (a stale Unix socket file is replaced), then serves them in
/// background tasks that stop when `shutdown` turns true. Returns the bound TCP address, if any.
pub async fn start(
    daemon: Arc<Daemon>,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<std::net::SocketAddr>, BindError> {
    let app: Router = super::router(daemon.clone());
    let mut bound = None;
    if let Some(addr) = daemon.config.api.tcp {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| BindError { what: addr.to_string(), source })?;
        bound = listener.local_addr().ok();
        tracing::info!(addr = %addr, "local API listening (tcp)");
        let (app, mut stop) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "local API (tcp) stopped");
            }
        });
    }
    if let Some(path) = daemon.config.api.unix.clone() {
        let listener = bind_unix(&path).map_err(|source| BindError { what: path.display().to_string(), source })?;
        tracing::info!(path = %path.display(), "local API listening (unix)");
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "local API (unix) stopped");
            }
            let _ = std::fs::remove_file(&path);
        });
    }
    Ok(bound)
}

fn bind_unix(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket left by a previous run (killed) would make bind fail; only a socket is removed.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    tokio::net::UnixListener::bind(path)
}
