//! The local gate: one local inference at a time, as the decider's queue model assumes; the
//! waiting runs start by the order key each was queued with — shortest first with aging
//! ([`ferry_decide::queue::order_key`]), FIFO among equals — so that a tiny model's request
//! is not held for seconds behind image runs, and an image run is not starved by them. At most
//! `max` runs wait ([`ferry_decide::queue::is_full`]); a waiter that went away (its request
//! was cancelled) no longer counts and is skipped.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Admits one run at a time.
#[derive(Debug, Default)]
pub struct LocalGate {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    busy: bool,
    seq: u64,
    waiting: BinaryHeap<Waiter>,
}

#[derive(Debug)]
struct Waiter {
    key: u64,
    seq: u64,
    wake: oneshot::Sender<GatePermit>,
}

// A max-heap: the greatest waiter is the cheapest, then the earliest.
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key).then(other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Waiter {}

/// The queue is full: the run was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the local queue is full")]
pub struct QueueFull;

/// The right to run; the next waiter is admitted when it is dropped.
#[derive(Debug)]
pub struct GatePermit {
    gate: Arc<LocalGate>,
}

impl LocalGate {
    /// A free gate.
    pub fn new() -> Arc<LocalGate> {
        Arc::new(LocalGate::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a flag and a heap that no panic can leave half-updated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the gate; among waiters, the one queued with the least `key` goes first.
    /// Refused at once when `max` runs wait already. Dropping the future withdraws the run.
    pub async fn acquire(self: &Arc<Self>, key: u64, max: u16) -> Result<GatePermit, QueueFull> {
        let rx = {
            let mut st = self.lock();
            if !st.busy {
                st.busy = true;
                return Ok(GatePermit { gate: self.clone() });
            }
            if ferry_decide::queue::is_full(st.live(), st.busy, max) {
                return Err(QueueFull);
            }
            let (wake, rx) = oneshot::channel();
            st.seq += 1;
            let seq = st.seq;
            st.waiting.push(Waiter { key, seq, wake });
            rx
        };
        match rx.await {
            Ok(permit) => Ok(permit),
            // Unreachable: a waiter is only dropped after being sent its permit. Were it ever
            // reached, running without the gate beats hanging the request.
            Err(_) => Ok(GatePermit { gate: self.clone() }),
        }
    }

    /// Whether a run holds the gate now.
    pub fn is_busy(&self) -> bool {
        self.lock().busy
    }

    /// Requests waiting now (not counting those that went away).
    pub fn waiting(&self) -> usize {
        self.lock().live()
    }

    fn release(self: &Arc<Self>) {
        let next = {
            let mut st = self.lock();
            // Skip the waiters that went away: they hold no place.
            loop {
                match st.waiting.pop() {
                    Some(w) if w.wake.is_closed() => continue,
                    Some(w) => break w,
                    None => {
                        st.busy = false;
                        return;
                    }
                }
            }
        };
        // Outside the lock: a waiter that went away hands its permit straight back (its drop
        // admits the next one).
        let _ = next.wake.send(GatePermit { gate: self.clone() });
    }
}

impl State {
    /// Waiters still waiting.
    fn live(&self) -> usize {
        self.waiting.iter().filter(|w| !w.wake.is_closed()).count()
    }
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        self.gate.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiting_runs_start_shortest_first_and_in_order_among_equals() {
        let gate = LocalGate::new();
        let first = gate.acquire(40_000, 8).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, cost) in [("image-a", 40_000), ("digits", 50), ("image-b", 40_000), ("int8", 60_000)] {
            let (g, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = g.acquire(cost, 8).await.unwrap();
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }));
            // Queue them in this order.
            while gate.waiting() < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["digits", "image-a", "image-b", "int8"]);
        // Free again: the next acquire does not wait.
        let _p = tokio::time::timeout(Duration::from_secs(5), gate.acquire(1, 8)).await.expect("free").unwrap();
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_does_not_block_the_gate() {
        let gate = LocalGate::new();
        let first = gate.acquire(10, 8).await.unwrap();
        let g = gate.clone();
        let gone = tokio::spawn(async move { g.acquire(1, 8).await });
        while gate.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        gone.abort();
        let _ = gone.await;
        drop(first);
        let _p = tokio::time::timeout(Duration::from_secs(5), gate.acquire(5, 8)).await.expect("not blocked").unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_withdrawn_waiter_frees_its_place() {
        let gate = LocalGate::new();
        let running = gate.acquire(0, 1).await.unwrap();
        let g = gate.clone();
        let waiting = tokio::spawn(async move { g.acquire(10, 1).await.map(drop) });
        while gate.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.acquire(20, 1).await.err(), Some(QueueFull));
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(gate.waiting(), 0);
        let g = gate.clone();
        let next = tokio::spawn(async move { g.acquire(30, 1).await.map(drop) });
        while gate.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        drop(running);
        tokio::time::timeout(Duration::from_secs(5), next).await.expect("admitted").unwrap().unwrap();
    }

    #[tokio::test]
    async fn aging_bounds_how_long_small_runs_hold_an_image_run_back() {
        use ferry_decide::queue::order_key;
        // An image run (40 ms) queued at 0, then digits runs (0.05 ms) every 10 ms: with factor
        // 4 the image run goes before every digits run queued after 160 ms.
        let gate = LocalGate::new();
        let running = gate.acquire(0, 64).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        let queue = |name: String, key: u64, tasks: &mut Vec<tokio::task::JoinHandle<()>>| {
            let (g, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = g.acquire(key, 64).await.unwrap();
                order.lock().unwrap().push(name);
            }));
        };
        queue("image".into(), order_key(0, 40_000.0, 4.0), &mut tasks);
        for i in 1..=30u64 {
            queue(format!("digits@{}ms", i * 10), order_key(i * 10_000, 50.0, 4.0), &mut tasks);
        }
        while gate.waiting() < 31 {
            tokio::task::yield_now().await;
        }
        drop(running);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        let at = order.iter().position(|n| n == "image").unwrap();
        // Passed by the digits runs queued at 10..=150 ms, not by those at 160 ms and after.
        assert_eq!(at, 15, "{order:?}");
    }
}
