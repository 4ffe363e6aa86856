//! The bounded channel of encoded answers between those who produce them (the event loop's
//! immediate answers, the workers' results) and the task that publishes them.
//!
//! A worker that finds the channel full waits (it takes no new request meanwhile, so the
//! queue fills and the event loop answers `busy`: backpressure, nothing lost). The event loop
//! must never wait: it is also what writes to the broker, so waiting for room could wait for
//! itself. An immediate answer that finds no room is not sent; it is counted
//! ([`Stats::answers_lost`]) and logged (rate-limited), and the device's own timeout covers
//! the request (it falls back locally). Every answer is accounted: sent to the broker, or
//! counted lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferry_protocol::DeviceId;
use tokio::sync::mpsc;

use crate::stats::{RateLimit, Stats};

/// An encoded response for a device.
#[derive(Debug)]
pub struct Outgoing {
    /// The device whose response topic it goes to.
    pub device: DeviceId,
    /// The response envelope.
    pub payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Answers accepted into the channel.
    queued: AtomicU64,
    /// Answers the publisher took out of it (handed to the MQTT client, or counted lost).
    taken: AtomicU64,
    /// Of those: handed to the MQTT client.
    handed: AtomicU64,
}

/// The producing side (cheap to clone).
#[derive(Debug, Clone)]
pub struct Answers {
    tx: mpsc::Sender<Outgoing>,
    counts: Arc<Counts>,
    stats: Arc<Stats>,
    warn: Arc<RateLimit>,
}

/// The publishing side.
#[derive(Debug)]
pub struct AnswerReceiver {
    rx: mpsc::Receiver<Outgoing>,
    counts: Arc<Counts>,
    stats: Arc<Stats>,
}

/// A channel holding at most `capacity` answers.
pub fn channel(capacity: usize, stats: Arc<Stats>) -> (Answers, AnswerReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let counts = Arc::new(Counts::default());
    (
        Answers {
            tx,
            counts: counts.clone(),
            stats: stats.clone(),
            warn: Arc::new(RateLimit::every_secs(10)),
        },
        AnswerReceiver { rx, counts, stats },
    )
}

impl Answers {
    /// From a worker thread (never from async code): waits for room. The answer is lost only
    /// when the publisher is gone (the server stopped waiting for it): counted and logged.
    pub fn send_blocking(&self, out: Outgoing) {
        let device = out.device;
        match self.tx.blocking_send(out) {
            Ok(()) => {
                self.counts.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => self.lost(device, "the publisher has stopped"),
        }
    }

    /// From the event loop: queues the answer if there is room, else counts it lost. True if
    /// queued.
    pub fn try_send(&self, out: Outgoing) -> bool {
        let device = out.device;
        match self.tx.try_send(out) {
            Ok(()) => {
                self.counts.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lost(device, "the answer channel is full");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.lost(device, "the publisher has stopped");
                false
            }
        }
    }

    /// Answers queued and not yet taken by the publisher.
    pub fn unpublished(&self) -> u64 {
        let queued = self.counts.queued.load(Ordering::Relaxed);
        queued.saturating_sub(self.counts.taken.load(Ordering::Relaxed))
    }

    /// Answers handed to the MQTT client so far.
    pub fn handed(&self) -> u64 {
        self.counts.handed.load(Ordering::Relaxed)
    }

    /// Answers waiting in the channel now.
    pub fn len(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// True when no answer waits in the channel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lost(&self, device: DeviceId, why: &str) {
        let n = Stats::bump(&self.stats.answers_lost);
        if let Some(suppressed) = self.warn.allow() {
            tracing::warn!(%device, answers_lost_total = n, suppressed, why, "an answer could not be sent; the device's timeout covers the request");
        }
    }
}

impl AnswerReceiver {
    /// The next answer; None once every producer is gone and the channel is empty.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        self.rx.recv().await
    }

    /// Records that the answer last received went to the MQTT client.
    pub fn handed(&self) {
        self.counts.taken.fetch_add(1, Ordering::Relaxed);
        self.counts.handed.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that the answer last received could not be given to the MQTT client.
    pub fn lost(&self) {
        self.counts.taken.fetch_add(1, Ordering::Relaxed);
        Stats::bump(&self.stats.answers_lost);
    }

    /// Closes the channel (a worker waiting for room gives up, counting its answer lost) and
    /// counts what is still in it lost; returns how many.
    pub fn close_and_count_lost(&mut self) -> u64 {
        self.rx.close();
        let mut n = 0;
        while let Ok(_out) = self.rx.try_recv() {
            self.lost();
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out() -> Outgoing {
        Outgoing {
            device: DeviceId::new("dev-1").unwrap(),
            payload: vec![1, 2, 3],
        }
    }

    #[test]
    fn the_event_loop_never_waits_and_what_finds_no_room_is_counted_lost() {
        let stats = Arc::new(Stats::default());
        let (answers, _rx) = channel(2, stats.clone());
        assert!(answers.try_send(out()));
        assert!(answers.try_send(out()));
        assert!(!answers.try_send(out()), "the channel holds 2");
        assert_eq!(answers.len(), 2);
        assert_eq!(stats.snapshot().answers_lost, 1);
        assert_eq!(answers.unpublished(), 2);
    }

    #[test]
    fn a_worker_waits_for_room_and_loses_nothing() {
        let stats = Arc::new(Stats::default());
        let (answers, mut rx) = channel(1, stats.clone());
        let worker = {
            let answers = answers.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    answers.send_blocking(out());
                }
            })
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let mut got = 0;
            while got < 50 {
                assert!(answers.len() <= 1, "never more than the capacity waits");
                rx.recv().await.unwrap();
                rx.handed();
                got += 1;
            }
            got
        });
        worker.join().unwrap();
        assert_eq!(got, 50);
        assert_eq!(
            (
                stats.snapshot().answers_lost,
                answers.unpublished(),
                answers.handed()
            ),
            (0, 0, 50)
        );
    }

    #[test]
    fn answers_left_when_the_publisher_gives_up_are_counted_lost() {
        let stats = Arc::new(Stats::default());
        let (answers, mut rx) = channel(4, stats.clone());
        answers.try_send(out());
        answers.try_send(out());
        assert_eq!(rx.close_and_count_lost(), 2);
        assert_eq!(answers.unpublished(), 0);
        answers.send_blocking(out());
        assert_eq!(stats.snapshot().answers_lost, 3);
    }
}
