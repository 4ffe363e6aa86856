//! Binding the API's sockets and serving them until shutdown.
//!
//! The Unix socket is given its configured mode and group right after bind (the umask would
//! otherwise decide who may connect). On shutdown the listeners stop accepting at once and
//! every connection finishes the request it carries (axum's graceful shutdown); the tasks'
//! handles let [`crate::Agent::stop`] wait for that, bounded by `[api] drain_ms`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::daemon::config::AgentConfigError;
use crate::daemon::Daemon;

/// A socket the API could not bind or set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Bind, chmod or chown failed.
    #[error("cannot listen on {what}: {source}")]
    Listen {
        /// The address or path.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The config names something this system does not have (a socket group).
    #[error(transparent)]
    Config(#[from] AgentConfigError),
}

/// The bound API: its TCP address, if any, and the tasks serving it.
pub struct Served {
    /// The bound TCP address.
    pub tcp: Option<std::net::SocketAddr>,
    /// One task per socket; each ends once its connections are closed after `shutdown`.
    pub tasks: Vec<JoinHandle<()>>,
}

/// Binds every configured socket (a stale Unix socket file is replaced), then serves them in
/// background tasks that stop accepting when `shutdown` turns true and end when the requests
/// in flight are answered.
pub async fn start(daemon: Arc<Daemon>, shutdown: watch::Receiver<bool>) -> Result<Served, BindError> {
    let app: Router = super::router(daemon.clone());
    let mut served = Served { tcp: None, tasks: Vec::new() };
    // The group first: a config error should stop start-up before anything is bound.
    let gid = match &daemon.config.api.socket_group {
        Some(group) => Some(resolve_group(group).ok_or_else(|| AgentConfigError::Value {
            path: daemon.config.path.clone(),
            key: "api.socket_group".to_string(),
            expected: format!("a group that exists on this system (a name in /etc/group or a number), not `{group}`"),
        })?),
        None => None,
    };
    if let Some(addr) = daemon.config.api.tcp {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| BindError::Listen { what: addr.to_string(), source })?;
        served.tcp = listener.local_addr().ok();
        tracing::info!(addr = %addr, "local API listening (tcp; any local user can connect)");
        let (app, mut stop) = (app.clone(), shutdown.clone());
        served.tasks.push(tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "local API (tcp) stopped");
            }
        }));
    }
    if let Some(path) = daemon.config.api.unix.clone() {
        let what = path.display().to_string();
        let listener = bind_unix(&path).map_err(|source| BindError::Listen { what: what.clone(), source })?;
        let mode = daemon.config.api.socket_mode_bits().unwrap_or(0o660);
        set_access(&path, mode, gid).map_err(|source| BindError::Listen { what, source })?;
        tracing::info!(path = %path.display(), mode = format!("{mode:04o}"), gid, "local API listening (unix)");
        let mut stop = shutdown.clone();
        served.tasks.push(tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "local API (unix) stopped");
            }
            remove_socket(&path);
        }));
    }
    Ok(served)
}

fn remove_socket(path: &PathBuf) {
    let _ = std::fs::remove_file(path);
}

/// Gives the socket its mode and (when configured) group: who may connect is decided here.
fn set_access(path: &Path, mode: u32, gid: Option<u32>) -> std::io::Result<()> {
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// A group's id from its name (`/etc/group`) or its number.
pub fn resolve_group(group: &str) -> Option<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Some(gid);
    }
    let text = std::fs::read_to_string("/etc/group").ok()?;
    group_id(&text, group)
}

/// The gid of `name` in `/etc/group`-formatted `text` (`name:password:gid:members`).
fn group_id(text: &str, name: &str) -> Option<u32> {
    text.lines().filter_map(|l| {
        let mut f = l.split(':');
        let (n, _, gid) = (f.next()?, f.next()?, f.next()?);
        (n == name).then(|| gid.trim().parse().ok()).flatten()
    }).next()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_found_by_name_in_etc_group() {
        let text = "root:x:0:\nferry-apps:x:1234:alice,bob\nbroken\n";
        assert_eq!(group_id(text, "ferry-apps"), Some(1234));
        assert_eq!(group_id(text, "root"), Some(0));
        assert_eq!(group_id(text, "nobody-here"), None);
        assert_eq!(resolve_group("4321"), Some(4321));
    }
}
