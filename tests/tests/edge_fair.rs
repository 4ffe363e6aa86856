//! Issue 14, defect 10: the edge's queue had no per-device share, so one device could fill it
//! for all. Now each device is guaranteed its share: while dev-1 floods the edge (always more
//! outstanding than the whole queue holds), dev-2, sending one request at a time and so
//! within its share, is never answered `busy` — and dev-1 still gets exactly one answer per
//! request, the queue never deeper than configured.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::Status;
use ferry_tests::fleet::{self, FleetDevice};
use ferry_tests::harness::{now_us, Broker, Edge, EdgeOptions};

const MODEL: &str = "efficientnet-lite0";
const CAPACITY: usize = 8;
/// dev-1 keeps twice the queue's capacity outstanding.
const FLOOD: u64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_device_cannot_make_another_within_its_share_get_busy() {
    let broker = Broker::start();
    let edge = Edge::start(
        &broker,
        &EdgeOptions {
            models: vec![MODEL],
            queue_capacity: CAPACITY,
            workers: 1,
            ..EdgeOptions::default()
        },
    );
    let image = Arc::new(fleet::image("models/images/cat.jpg"));
    let mut flooder = FleetDevice::connect(&broker, "dev-1", "flood").await;
    let mut victim = FleetDevice::connect(&broker, "dev-2", "fair").await;

    let stop = Arc::new(AtomicBool::new(false));
    let (first_busy_tx, first_busy) = tokio::sync::oneshot::channel::<()>();
    let flood = {
        let (stop, image) = (stop.clone(), image.clone());
        tokio::spawn(async move {
            let mut next_id = 1;
            let mut answers: BTreeMap<u64, Vec<Status>> = BTreeMap::new();
            let mut depths = Vec::new();
            for _ in 0..FLOOD {
                flooder
                    .send(&fleet::image_request(
                        "dev-1",
                        next_id,
                        MODEL,
                        &image,
                        None,
                        now_us(),
                    ))
                    .await;
                next_id += 1;
            }
            let mut first_busy_tx = Some(first_busy_tx);
            // Keeps FLOOD outstanding until told to stop (bounded by the test's own timeouts
            // below: the victim's loop ends, then `stop` is set).
            while !stop.load(Ordering::Relaxed) {
                let Some(r) = flooder.next_response(Duration::from_millis(200)).await else {
                    continue;
                };
                answers.entry(r.request_id).or_default().push(r.status);
                depths.push(r.timings.queue_depth);
                if r.status == Status::Busy {
                    if let Some(tx) = first_busy_tx.take() {
                        let _ = tx.send(());
                    }
                    // A device told busy runs the request locally: that takes it a while.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                flooder
                    .send(&fleet::image_request(
                        "dev-1",
                        next_id,
                        MODEL,
                        &image,
                        None,
                        now_us(),
                    ))
                    .await;
                next_id += 1;
            }
            for r in flooder
                .collect(Duration::from_secs(3), Duration::from_secs(60))
                .await
            {
                answers.entry(r.request_id).or_default().push(r.status);
                depths.push(r.timings.queue_depth);
            }
            (next_id - 1, answers, depths)
        })
    };
    tokio::time::timeout(Duration::from_secs(60), first_busy)
        .await
        .expect("dev-1 never got busy: the queue never filled")
        .expect("flood task");

    let mut victim_statuses = Vec::new();
    for id in 1..=8 {
        victim
            .send(&fleet::image_request(
                "dev-2",
                id,
                MODEL,
                &image,
                None,
                now_us(),
            ))
            .await;
        let r = victim
            .next_response(Duration::from_secs(30))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "dev-2's request {id} unanswered\nedge:\n{}",
                    edge.proc.stderr.text()
                )
            });
        assert_eq!(r.request_id, id);
        assert!(r.timings.queue_depth as usize <= CAPACITY, "{r:?}");
        victim_statuses.push(r.status);
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, answers, depths) = flood.await.unwrap();

    assert!(
        victim_statuses.iter().all(|s| *s == Status::Ok),
        "dev-2, within its share, was answered {victim_statuses:?} while dev-1 flooded"
    );
    for id in 1..=sent {
        let statuses = answers.get(&id).cloned().unwrap_or_default();
        assert_eq!(statuses.len(), 1, "dev-1's request {id}: {statuses:?}");
    }
    let busy = answers.values().filter(|s| s[0] == Status::Busy).count();
    assert!(busy > 0, "dev-1 was never shed");
    assert!(
        depths.iter().all(|&d| d as usize <= CAPACITY),
        "queue deeper than {CAPACITY}: {depths:?}"
    );
    eprintln!("fair: dev-1 sent {sent}, {busy} busy; dev-2 8 of 8 ok");
}
