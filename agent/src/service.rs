//! The agent as a library: [`Agent::start`] and [`run`]`(config, shutdown)`, the one way to
//! compose a running agent — `ferry run`, the demo and the tests all go through it (the shape
//! of mini-redis's `server::run`). Signals, systemd notifications and the "ready" line stay
//! in the binary.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::serve::BindError;
use crate::daemon::{AgentConfig, Daemon, Prepared, StartError};

/// How long start-up waits for the broker before carrying on local-only (the link keeps
/// reconnecting in the background).
const BROKER_WAIT: Duration = Duration::from_secs(5);

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The daemon could not start (config, models, MQTT, telemetry).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The local API could not bind its sockets.
    #[error(transparent)]
    Bind(#[from] BindError),
}

/// A started agent: its daemon, API sockets and sensor loop.
pub struct Agent {
    daemon: Arc<Daemon>,
    stop: watch::Sender<bool>,
    api_tcp: Option<SocketAddr>,
    api_tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// After the drain, how long the answers `503 shutting_down` may take to be written.
const ABORT_GRACE: Duration = Duration::from_secs(2);

impl Agent {
    /// Starts the daemon (models, edge link, telemetry), waits a little for the broker, binds
    /// the local API and starts the sensor loop.
    pub async fn start(config: AgentConfig) -> Result<Agent, RunError> {
        Agent::start_prepared(Daemon::prepare(config).await?).await
    }

    /// [`Agent::start`] with the board and models already loaded ([`Daemon::prepare`]).
    pub async fn start_prepared(prepared: Prepared) -> Result<Agent, RunError> {
        let daemon = Daemon::start_prepared(prepared).await?;
        if let Some(link) = &daemon.offloader {
            match link.wait_ready(BROKER_WAIT).await {
                Ok(()) => tracing::info!("edge link ready"),
                Err(e) => tracing::warn!(error = %e, "edge link not ready; running local-only until it connects"),
            }
        }
        let (stop, stop_rx) = watch::channel(false);
        let served = crate::api::serve::start(daemon.clone(), stop_rx.clone()).await?;
        tokio::spawn(daemon.clone().sensor_loop(stop_rx));
        Ok(Agent { daemon, stop, api_tcp: served.tcp, api_tasks: served.tasks })
    }

    /// The daemon, to submit requests in-process or read its state.
    pub fn daemon(&self) -> &Arc<Daemon> {
        &self.daemon
    }

    /// The bound TCP address of the local API, if it listens on TCP.
    pub fn api_tcp(&self) -> Option<SocketAddr> {
        self.api_tcp
    }

    /// Stops the API and the sensor loop with exactly one answer to every request: the
    /// listeners refuse new connections at once, the requests in flight get `[api] drain_ms`
    /// to finish, and those still running then are answered `503 shutting_down`. Then it
    /// flushes telemetry. The API's sockets are closed when this returns (a restart can bind
    /// them again).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let drain = Duration::from_millis(u64::from(self.daemon.config.api.drain_ms));
        let mut tasks = futures_join(self.api_tasks);
        if tokio::time::timeout(drain, &mut tasks).await.is_err() {
            tracing::warn!(drain_ms = drain.as_millis() as u64, "requests still in flight after the drain: answering them shutting_down");
            self.daemon.abort_in_flight();
            if tokio::time::timeout(ABORT_GRACE, &mut tasks).await.is_err() {
                tracing::error!("the API did not close within {ABORT_GRACE:?} of the abort");
            }
        }
        self.daemon.stop().await;
    }
}

/// Runs the agent on `config` until `shutdown` resolves, then stops it.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let agent = Agent::start(config).await?;
    shutdown.await;
    agent.stop().await;
    Ok(())
}

/// One future that ends when every task has.
fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        for t in tasks {
            let _ = t.await;
        }
    })
}
