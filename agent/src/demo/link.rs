//! An emulated network link for the demo: a TCP proxy on loopback that paces bytes to a
//! bandwidth and delays them by a one-way latency, in both directions, with both settings
//! changeable while connections are open (the kernel's `netem` is not needed, nor root).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The link's current shape.
#[derive(Debug, Default)]
pub struct Shape {
    /// Bits per second each way.
    bps: AtomicU64,
    /// One-way delay, µs.
    delay_us: AtomicU64,
}

impl Shape {
    /// Sets the bandwidth (Mbit/s) and the one-way delay (ms).
    pub fn set(&self, mbps: f64, delay_ms: f64) {
        self.bps
            .store((mbps * 1e6).max(1e3) as u64, Ordering::Relaxed);
        self.delay_us
            .store((delay_ms * 1e3).max(0.0) as u64, Ordering::Relaxed);
    }

    fn transmit_time(&self, bytes: usize) -> Duration {
        let bps = self.bps.load(Ordering::Relaxed).max(1_000);
        Duration::from_secs_f64(bytes as f64 * 8.0 / bps as f64)
    }

    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
    }
}

/// Starts the proxy on 127.0.0.1 (a free port) in front of `upstream`; returns its address.
pub async fn start(upstream: SocketAddr, shape: Arc<Shape>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let shape = shape.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(pump(cr, sw, shape.clone()), pump(sr, cw, shape));
            });
        }
    });
    Ok(addr)
}

/// One direction: the reader stamps each chunk with when it finishes crossing the link (after
/// the chunks before it: a queue), the writer delivers it at that time plus the delay.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shape: Arc<Shape>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let reader = async move {
        let mut free_at = Instant::now();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            free_at = free_at.max(Instant::now()) + shape.transmit_time(n);
            if tx
                .send((free_at + shape.delay(), buf[..n].to_vec()))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
