//! `ferry run`: the agent as a service — [`crate::service`] under signals and systemd.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::RunArgs;
use crate::daemon::{AgentConfig, Daemon, Prepared};
use crate::service::Agent;

/// Runs `ferry run` until SIGTERM or SIGINT.
pub fn run(args: &RunArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().worker_threads(2).build().context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &RunArgs) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut prepared = Daemon::prepare(AgentConfig::load(&args.config)?).await?;
    loop {
        let agent = start(prepared).await?;
        let mut watchdog = tokio::time::interval(watchdog_period());
        // Some(the new config, loaded) on a SIGHUP whose config and files load; None on
        // SIGTERM/SIGINT. The new config's board and models are loaded while this agent still
        // serves: if they cannot be, it goes on serving.
        let next = loop {
            tokio::select! {
                _ = watchdog.tick() => { let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]); }
                _ = term.recv() => break None,
                _ = int.recv() => break None,
                _ = hup.recv() => if let Some(loaded) = reload(&args.config).await { break Some(loaded) },
            }
        };
        match next {
            Some(new) => {
                agent.stop().await;
                prepared = new;
            }
            None => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
                tracing::info!("stopping");
                agent.stop().await;
                return Ok(());
            }
        }
    }
}

/// A SIGHUP: tells systemd at once that a reload is under way (it shows `reloading` until
/// the new agent's READY=1), then loads the config and its board and models. On failure the
/// running agent is kept, and systemd is told it is ready again.
async fn reload(path: &std::path::Path) -> Option<Prepared> {
    tracing::info!(config = %path.display(), "SIGHUP: reloading");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
    let loaded = match AgentConfig::load(path) {
        Ok(new) => Daemon::prepare(new)
            .await
            .map_err(|e| tracing::error!(error = %e, "SIGHUP: the new config's board or models cannot be loaded; keeping the running one"))
            .ok(),
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: the new config is invalid; keeping the running one");
            None
        }
    };
    if loaded.is_none() {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
    loaded
}

async fn start(prepared: Prepared) -> Result<Agent> {
    let agent = Agent::start_prepared(prepared).await?;
    // One line on stdout for scripts and tests: where the API is.
    match (agent.api_tcp(), &agent.daemon().config.api.unix) {
        (Some(addr), Some(p)) => println!("ferry: ready, api tcp {addr} unix {}", p.display()),
        (Some(addr), None) => println!("ferry: ready, api tcp {addr}"),
        (None, Some(p)) => println!("ferry: ready, api unix {}", p.display()),
        (None, None) => println!("ferry: ready"),
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    Ok(agent)
}

/// Half the systemd watchdog interval, or 10 s when there is no watchdog.
fn watchdog_period() -> Duration {
    match sd_notify::watchdog_enabled() {
        Some(d) if !d.is_zero() => d / 2,
        _ => Duration::from_secs(10),
    }
}
