//! The local gate: one local inference at a time, as the decider's queue model assumes; the
//! waiting runs start shortest first (by the predicted compute each was queued with, FIFO
//! among equals), so that a tiny model's request is not held for seconds behind image runs.

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
    cost_us: u64,
    seq: u64,
    wake: oneshot::Sender<GatePermit>,
}

// A max-heap: the greatest waiter is the cheapest, then the earliest.
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> Ordering {
        other.cost_us.cmp(&self.cost_us).then(other.seq.cmp(&self.seq))
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

    /// Waits for the gate; among waiters, the one queued with the least `cost_us` goes first.
    pub async fn acquire(self: &Arc<Self>, cost_us: u64) -> GatePermit {
        let rx = {
            let mut st = self.lock();
            if !st.busy {
                st.busy = true;
                return GatePermit { gate: self.clone() };
            }
            let (wake, rx) = oneshot::channel();
            st.seq += 1;
            let seq = st.seq;
            st.waiting.push(Waiter { cost_us, seq, wake });
            rx
        };
        match rx.await {
            Ok(permit) => permit,
            // Unreachable: a waiter is only dropped after being sent its permit. Were it ever
            // reached, running without the gate beats hanging the request.
            Err(_) => GatePermit { gate: self.clone() },
        }
    }

    /// Whether a run holds the gate now.
    pub fn is_busy(&self) -> bool {
        self.lock().busy
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    fn release(self: &Arc<Self>) {
        let next = {
            let mut st = self.lock();
            match st.waiting.pop() {
                Some(w) => w,
                None => {
                    st.busy = false;
                    return;
                }
            }
        };
        // Outside the lock: a waiter that went away hands its permit straight back (its drop
        // admits the next one).
        let _ = next.wake.send(GatePermit { gate: self.clone() });
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
        let first = gate.acquire(40_000).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, cost) in [("image-a", 40_000), ("digits", 50), ("image-b", 40_000), ("int8", 60_000)] {
            let (g, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = g.acquire(cost).await;
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
        let _p = tokio::time::timeout(Duration::from_secs(5), gate.acquire(1)).await.expect("free");
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_does_not_block_the_gate() {
        let gate = LocalGate::new();
        let first = gate.acquire(10).await;
        let g = gate.clone();
        let gone = tokio::spawn(async move { g.acquire(1).await });
        while gate.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        gone.abort();
        let _ = gone.await;
        drop(first);
        let _p = tokio::time::timeout(Duration::from_secs(5), gate.acquire(5)).await.expect("not blocked");
    }
}
