//! `ferry run`: the agent as a service.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::cli::RunArgs;
use crate::daemon::{AgentConfig, Daemon};

/// How long start-up waits for the broker before carrying on local-only (the link keeps
/// reconnecting in the background).
const BROKER_WAIT: Duration = Duration::from_secs(5);

/// Runs `ferry run` until SIGTERM or SIGINT.
pub fn run(args: &RunArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().worker_threads(2).build().context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &RunArgs) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut config = AgentConfig::load(&args.config)?;
    loop {
        let (stop_tx, stop_rx) = watch::channel(false);
        let daemon = start(config.clone(), stop_rx).await?;
        let mut watchdog = tokio::time::interval(watchdog_period());
        // Some(new config) on a valid SIGHUP; None on SIGTERM/SIGINT.
        let next = loop {
            tokio::select! {
                _ = watchdog.tick() => { let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]); }
                _ = term.recv() => break None,
                _ = int.recv() => break None,
                _ = hup.recv() => match AgentConfig::load(&args.config) {
                    Ok(new) => break Some(new),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: the new config is invalid; keeping the running one"),
                },
            }
        };
        let _ = stop_tx.send(true);
        match next {
            Some(new) => {
                tracing::info!(config = %args.config.display(), "SIGHUP: reloading");
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
                shutdown(daemon).await;
                config = new;
            }
            None => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
                tracing::info!("stopping");
                shutdown(daemon).await;
                return Ok(());
            }
        }
    }
}

async fn start(config: AgentConfig, stop: watch::Receiver<bool>) -> Result<Arc<Daemon>> {
    let daemon = Daemon::start(config).await?;
    if let Some(link) = &daemon.offloader {
        match link.wait_ready(BROKER_WAIT).await {
            Ok(()) => tracing::info!("edge link ready"),
            Err(e) => tracing::warn!(error = %e, "edge link not ready; running local-only until it connects"),
        }
    }
    let tcp = crate::api::serve::start(daemon.clone(), stop.clone()).await?;
    tokio::spawn(daemon.clone().sensor_loop(stop));
    // One line on stdout for scripts and tests: where the API is.
    match (tcp, &daemon.config.api.unix) {
        (Some(addr), Some(p)) => println!("ferry: ready, api tcp {addr} unix {}", p.display()),
        (Some(addr), None) => println!("ferry: ready, api tcp {addr}"),
        (None, Some(p)) => println!("ferry: ready, api unix {}", p.display()),
        (None, None) => println!("ferry: ready"),
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    Ok(daemon)
}

/// Lets the API tasks see the stop signal and close their sockets before the next start binds
/// them again.
async fn shutdown(daemon: Arc<Daemon>) {
    daemon.stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(daemon);
}

/// Half the systemd watchdog interval, or 10 s when there is no watchdog.
fn watchdog_period() -> Duration {
    match sd_notify::watchdog_enabled() {
        Some(d) if !d.is_zero() => d / 2,
        _ => Duration::from_secs(10),
    }
}
