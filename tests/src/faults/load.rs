//! The steady request load of a fault scenario: one request every [`LoadConfig::period`]
//! through the agent's API, open loop (each on its own thread, so a slow answer does not hold
//! the next request back), alternating between images, each with a deadline; every exchange
//! is recorded with when it was sent and when it ended.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::client::{self, Exchange};

/// The load's shape.
#[derive(Debug, Clone, Copy)]
pub struct LoadConfig {
    /// One request every this long.
    pub period: Duration,
    /// Each request's `deadline_ms`.
    pub deadline_ms: u32,
    /// How long a request may go without an answer before it counts as unanswered.
    pub timeout: Duration,
}

/// An image the load sends, with the class local FP32 inference gives it.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its file, relative to the repository.
    pub name: &'static str,
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its top-1 class index.
    pub top1: u64,
}

/// One request of the load.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its number, from 0.
    pub n: usize,
    /// Which image (index into the load's images).
    pub image: usize,
    /// When it was sent, s since the scenario's clock started.
    pub sent_s: f64,
    /// When the exchange ended, s since the same clock.
    pub done_s: f64,
    /// What came back.
    pub exchange: Exchange,
}

/// A running load.
pub struct Load {
    t0: Instant,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<Vec<JoinHandle<()>>>>,
    records: Arc<Mutex<Vec<Record>>>,
    in_flight: Arc<AtomicUsize>,
}

impl Load {
    /// Starts sending to the API socket `socket` at once; times are counted from `t0`.
    pub fn start(
        socket: PathBuf,
        model: &'static str,
        images: Arc<Vec<Image>>,
        config: LoadConfig,
        t0: Instant,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let records = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let (stop, records, in_flight) = (stop.clone(), records.clone(), in_flight.clone());
            std::thread::spawn(move || {
                let path = format!("/v1/infer/{model}?deadline_ms={}", config.deadline_ms);
                let start = Instant::now();
                let mut threads = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let (socket, path, images, records, in_flight) = (
                        socket.clone(),
                        path.clone(),
                        images.clone(),
                        records.clone(),
                        in_flight.clone(),
                    );
                    let image = n % images.len();
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    threads.push(std::thread::spawn(move || {
                        let sent_s = t0.elapsed().as_secs_f64();
                        let exchange = client::post(
                            &socket,
                            &path,
                            "image/jpeg",
                            &images[image].bytes,
                            config.timeout,
                        );
                        let done_s = t0.elapsed().as_secs_f64();
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        records
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(Record {
                                n,
                                image,
                                sent_s,
                                done_s,
                                exchange,
                            });
                    }));
                    n += 1;
                    // Finished threads are reaped as the load goes (each is bounded by the timeout).
                    threads.retain(|t| !t.is_finished());
                    let next = start + config.period * u32::try_from(n).unwrap_or(u32::MAX);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                threads
            })
        };
        Load {
            t0,
            stop,
            ticker: Some(ticker),
            records,
            in_flight,
        }
    }

    /// Seconds since the scenario's clock started.
    pub fn now_s(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Requests sent and not yet ended.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Waits (at most `timeout`) until a request is in flight, then `into` longer, so that a
    /// fault lands in the middle of one; false if none was in flight in time.
    pub fn wait_mid_request(&self, timeout: Duration, into: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.in_flight() > 0 {
                std::thread::sleep(into);
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    /// Waits until `done(records ended so far)` holds, at most `timeout`; whether it did.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[Record]) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if done(&self.records.lock().unwrap_or_else(|p| p.into_inner())) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops sending, waits for every request in flight to end (each is bounded by the
    /// timeout), and returns every record in the order the requests were sent.
    pub fn finish(mut self) -> Vec<Record> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(ticker) = self.ticker.take() {
            for t in ticker.join().unwrap_or_default() {
                let _ = t.join();
            }
        }
        let mut records =
            std::mem::take(&mut *self.records.lock().unwrap_or_else(|p| p.into_inner()));
        records.sort_by_key(|r| r.n);
        records
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
