//! `decide()` and the scheduler's steps allocate nothing: counted with a global allocator.

#[path = "decide_common.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use ferry_decide::{Event, Observation, RequestMachine, SystemState};

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn count() -> u64 {
    COUNT.with(Cell::get)
}

#[test]
fn decide_observe_and_scheduler_steps_allocate_nothing() {
    for hedge in [false, true] {
        let mut d = decider(hedge);
        let mut now = 0;
        system(&mut d, 0.5, now);
        local_runs(&mut d, 60.0, 10, &mut now);
        offload(&mut d, 50.0, 5.0, &mut now);
        let req = image(Some(80));
        let before = count();
        for i in 0..10_000u64 {
            now += 1_000;
            if i % 3 == 0 {
                d.observe(Observation::System(SystemState { cpu_load: (i % 10) as f64 / 10.0, freq_ratio: 1.0, temp_c: 70.0 + (i % 20) as f64 }), now);
            }
            if i % 7 == 0 {
                offload(&mut d, 10.0 + (i % 90) as f64, 5.0, &mut now);
            }
            let dec = d.decide(&req, now);
            let (mut m, _) = RequestMachine::start(dec, now, req.deadline_us);
            m.handle(Event::OffloadBusy, now + 10);
            m.handle(Event::Timer, now + 50_000);
            m.handle(Event::LocalDone, now + 90_000);
            std::hint::black_box(d.probe_due(now));
        }
        assert_eq!(count() - before, 0, "allocations on the decision path (hedge = {hedge})");
    }
}
