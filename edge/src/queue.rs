//! The edge's request queue, shared fairly between devices: one FIFO per device, served
//! round-robin, with at most `capacity` requests in all. While the queue has room anyone may
//! queue; once it is full, a device holding less than its share (`capacity / devices
//! queued`, at least 1) still gets in, and the newest request of the device most over its
//! share makes room (it is handed back, to be answered `busy`). A device beyond its share
//! gets `busy` at once. So one device flooding the edge cannot make another device within
//! its share wait behind it or be refused, and the queue never holds more than `capacity`.
//!
//! The rule itself ([`Shares`]) is plain synchronous code; [`FairQueue`] wraps it in a mutex
//! and a condition variable for the worker threads.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

use ferry_protocol::DeviceId;

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The device already holds its share of a full queue.
    OverShare {
        /// Requests the device has queued.
        held: usize,
        /// Its share now.
        share: usize,
    },
    /// The queue is closed: the server is stopping.
    Closed,
}

/// What [`Shares::push`] did with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit<T> {
    /// Queued.
    Queued,
    /// Queued; this request, another device's newest and beyond its share, made room and
    /// must be answered (`busy`).
    QueuedEvicting(DeviceId, T),
    /// Not queued: answer it at once.
    Refused(T, Refusal),
}

/// The sharing rule over per-device FIFOs (no locking, no I/O).
#[derive(Debug)]
pub struct Shares<T> {
    capacity: usize,
    len: usize,
    by_device: HashMap<DeviceId, VecDeque<T>>,
    /// Devices with something queued, in serving order.
    turn: VecDeque<DeviceId>,
}

impl<T> Shares<T> {
    /// An empty queue holding at most `capacity` (at least 1) requests.
    pub fn new(capacity: usize) -> Self {
        Shares {
            capacity: capacity.max(1),
            len: 0,
            by_device: HashMap::new(),
            turn: VecDeque::new(),
        }
    }

    /// Requests queued, all devices.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Requests `device` has queued.
    pub fn held(&self, device: &DeviceId) -> usize {
        self.by_device.get(device).map_or(0, VecDeque::len)
    }

    /// Devices with something queued.
    pub fn devices(&self) -> usize {
        self.by_device.len()
    }

    /// A device's share when `devices` devices hold requests: `capacity / devices`, at least 1.
    pub fn share(&self, devices: usize) -> usize {
        (self.capacity / devices.max(1)).max(1)
    }

    /// Queues `item` for `device`, by the rule in the module doc.
    pub fn push(&mut self, device: DeviceId, item: T) -> Admit<T> {
        if self.len < self.capacity {
            self.insert(device, item);
            return Admit::Queued;
        }
        let held = self.held(&device);
        let devices = self.devices() + usize::from(held == 0);
        let share = self.share(devices);
        if held >= share {
            return Admit::Refused(item, Refusal::OverShare { held, share });
        }
        // Full, and this device is within its share: the device most over its share gives
        // up its newest request (it waited least).
        let over = self
            .by_device
            .iter()
            .filter(|(d, q)| **d != device && q.len() > share)
            .max_by_key(|(_, q)| q.len())
            .map(|(d, _)| *d);
        let Some(victim) = over else {
            // Everyone holds no more than the share (more devices than capacity): first come.
            return Admit::Refused(item, Refusal::OverShare { held, share });
        };
        let evicted = self.remove_newest(&victim);
        self.insert(device, item);
        match evicted {
            Some(e) => Admit::QueuedEvicting(victim, e),
            None => Admit::Queued,
        }
    }

    /// The next request, taking devices in turn.
    pub fn pop(&mut self) -> Option<T> {
        let device = self.turn.pop_front()?;
        let queue = self.by_device.get_mut(&device)?;
        let item = queue.pop_front();
        if queue.is_empty() {
            self.by_device.remove(&device);
        } else {
            self.turn.push_back(device);
        }
        if item.is_some() {
            self.len -= 1;
        }
        item
    }

    fn insert(&mut self, device: DeviceId, item: T) {
        let queue = self.by_device.entry(device).or_default();
        if queue.is_empty() {
            self.turn.push_back(device);
        }
        queue.push_back(item);
        self.len += 1;
    }

    fn remove_newest(&mut self, device: &DeviceId) -> Option<T> {
        let queue = self.by_device.get_mut(device)?;
        let item = queue.pop_back();
        if queue.is_empty() {
            self.by_device.remove(device);
            self.turn.retain(|d| d != device);
        }
        if item.is_some() {
            self.len -= 1;
        }
        item
    }
}

/// What a worker takes from the queue.
#[derive(Debug)]
pub struct Taken<T> {
    /// The requests, at most the batch size asked for.
    pub items: Vec<T>,
    /// The queue was closed: the server is stopping, answer these without running them.
    pub closing: bool,
}

struct State<T> {
    shares: Shares<T>,
    closed: bool,
}

/// [`Shares`] behind a lock, for the server's event loop (pushing) and the worker threads
/// (taking, blocking while it is empty).
pub struct FairQueue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

impl<T> std::fmt::Debug for FairQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairQueue")
            .field("depth", &self.depth())
            .finish()
    }
}

impl<T> FairQueue<T> {
    /// An open queue of at most `capacity` requests.
    pub fn new(capacity: usize) -> Self {
        FairQueue {
            state: Mutex::new(State {
                shares: Shares::new(capacity),
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item` for `device` (see [`Shares::push`]); refused once closed.
    pub fn push(&self, device: DeviceId, item: T) -> Admit<T> {
        let mut st = self.lock();
        if st.closed {
            return Admit::Refused(item, Refusal::Closed);
        }
        let admit = st.shares.push(device, item);
        drop(st);
        if !matches!(admit, Admit::Refused(..)) {
            self.ready.notify_one();
        }
        admit
    }

    /// Waits for a request, then takes up to `max` (at least 1) of those queued, devices in
    /// turn; None once the queue is closed and empty.
    pub fn take(&self, max: usize) -> Option<Taken<T>> {
        let mut st = self.lock();
        while st.shares.is_empty() && !st.closed {
            st = self.ready.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        let mut items = Vec::new();
        while items.len() < max.max(1) {
            match st.shares.pop() {
                Some(item) => items.push(item),
                None => break,
            }
        }
        if items.is_empty() {
            return None;
        }
        Some(Taken {
            items,
            closing: st.closed,
        })
    }

    /// Stops taking requests: every later push is refused, workers take what is left (marked
    /// [`Taken::closing`]) and then see None.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Requests queued now.
    pub fn depth(&self) -> usize {
        self.lock().shares.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(n: usize) -> DeviceId {
        DeviceId::new(&format!("dev-{n}")).unwrap()
    }

    #[test]
    fn a_lone_device_may_fill_the_whole_queue_and_no_more() {
        let mut q = Shares::new(4);
        for i in 0..4 {
            assert_eq!(q.push(dev(1), i), Admit::Queued);
        }
        assert_eq!(
            q.push(dev(1), 4),
            Admit::Refused(4, Refusal::OverShare { held: 4, share: 4 })
        );
        assert_eq!(q.len(), 4);
    }

    #[test]
    fn a_device_within_its_share_gets_in_and_the_flooders_newest_makes_room() {
        let mut q = Shares::new(4);
        for i in 0..4 {
            q.push(dev(1), i);
        }
        // dev-2 holds nothing; with two devices the share is 2: dev-1's newest (3) goes.
        assert_eq!(q.push(dev(2), 100), Admit::QueuedEvicting(dev(1), 3));
        assert_eq!(q.push(dev(2), 101), Admit::QueuedEvicting(dev(1), 2));
        // dev-2 now holds its share of a full queue.
        assert_eq!(
            q.push(dev(2), 102),
            Admit::Refused(102, Refusal::OverShare { held: 2, share: 2 })
        );
        assert_eq!(
            q.push(dev(1), 5),
            Admit::Refused(5, Refusal::OverShare { held: 2, share: 2 })
        );
        assert_eq!((q.len(), q.held(&dev(1)), q.held(&dev(2))), (4, 2, 2));
    }

    #[test]
    fn devices_are_served_in_turn_each_in_its_own_order() {
        let mut q = Shares::new(8);
        for i in 0..3 {
            q.push(dev(1), 10 + i);
        }
        q.push(dev(2), 20);
        q.push(dev(3), 30);
        q.push(dev(3), 31);
        let order: Vec<i32> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [10, 20, 30, 11, 31, 12]);
        assert!(q.is_empty());
        assert_eq!(q.devices(), 0, "emptied devices are forgotten");
    }

    #[test]
    fn with_more_devices_than_capacity_a_full_queue_is_first_come() {
        let mut q = Shares::new(2);
        q.push(dev(1), 1);
        q.push(dev(2), 2);
        assert_eq!(
            q.push(dev(3), 3),
            Admit::Refused(3, Refusal::OverShare { held: 0, share: 1 })
        );
    }

    #[test]
    fn the_queue_never_holds_more_than_its_capacity_whatever_the_devices_do() {
        // A deterministic mix of pushes and pops from 7 devices at capacity 10.
        let mut q = Shares::new(10);
        let mut seed = 0x2545_f491_u32;
        for step in 0..10_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            if seed.is_multiple_of(5) {
                q.pop();
            } else {
                let d = dev((seed % 7) as usize);
                let before = q.held(&d);
                let share = q.share(q.devices() + usize::from(before == 0));
                let someone_over = q.by_device.iter().any(|(o, l)| *o != d && l.len() > share);
                let admit = q.push(d, step);
                if matches!(admit, Admit::Refused(..)) {
                    assert_eq!(q.len(), 10, "refused with room at step {step}");
                    assert!(
                        before >= share || !someone_over,
                        "refused within its share at step {step}"
                    );
                }
            }
            assert!(q.len() <= 10, "step {step}: {} queued", q.len());
            let sum: usize = q.by_device.values().map(VecDeque::len).sum();
            assert_eq!(sum, q.len());
            assert_eq!(q.turn.len(), q.devices());
        }
    }

    #[test]
    fn a_closed_queue_refuses_and_hands_what_is_left_to_the_workers_marked_closing() {
        let q = FairQueue::new(4);
        assert_eq!(q.push(dev(1), 1), Admit::Queued);
        assert_eq!(q.push(dev(1), 2), Admit::Queued);
        q.close();
        assert_eq!(q.push(dev(1), 3), Admit::Refused(3, Refusal::Closed));
        let taken = q.take(8).unwrap();
        assert_eq!((taken.items, taken.closing), (vec![1, 2], true));
        assert!(q.take(8).is_none());
    }

    #[test]
    fn a_waiting_worker_wakes_on_push_and_on_close() {
        let q = std::sync::Arc::new(FairQueue::new(4));
        let worker = {
            let q = q.clone();
            std::thread::spawn(move || {
                let first = q.take(1).map(|t| t.items);
                let second = q.take(1).map(|t| t.items);
                (first, second)
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        q.push(dev(1), 7);
        std::thread::sleep(std::time::Duration::from_millis(20));
        q.close();
        assert_eq!(worker.join().unwrap(), (Some(vec![7]), None));
    }
}
