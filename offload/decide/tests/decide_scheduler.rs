//! The scheduler state machine's fallback paths, and the property that every request gets
//! exactly one answer whatever order events come in.

#[path = "decide_common.rs"]
mod common;

use common::*;
use ferry_decide::sim::rng::Rng;
use ferry_decide::{Action, Answer, AnswerKind, Choice, Decision, Event, Fallback, Ran, RequestMachine, Why};

fn offload_decision(hedge: bool) -> Decision {
    let mut d = decider(hedge);
    let mut now = 0;
    system(&mut d, 0.9, now);
    for _ in 0..10 {
        offload(&mut d, 100.0, 5.0, &mut now);
    }
    let dec = d.decide(&image(Some(150)), now);
    assert_eq!(dec.choice, Choice::Offload(EDGE));
    assert_eq!(dec.fallback, Some(LOCAL));
    // Its deadline (150 ms) is hard: answered by 150 + 20 ms of grace.
    assert_eq!(dec.answer_by_us, Some(170_000));
    // The fallback tests below vary the deadline and look at the fallback's timing alone.
    Decision { answer_by_us: None, ..dec }
}

fn answers(actions: &[Action]) -> Vec<Answer> {
    actions.iter().filter_map(|a| if let Action::Answer(x) = a { Some(*x) } else { None }).collect()
}

fn timer(actions: &[Action]) -> Option<u64> {
    actions.iter().find_map(|a| if let Action::SetTimer(t) = a { Some(*t) } else { None })
}

#[test]
fn edge_down_times_out_and_falls_back_to_local() {
    let dec = Decision { fallback_local_us: 0, ..offload_decision(false) };
    let (mut m, a) = RequestMachine::start(dec, 0, None);
    assert_eq!(a[0], Action::StartOffload(EDGE));
    let t = timer(&a).unwrap();
    assert_eq!(t, 1_000_000); // the edge's timeout
    let a = m.handle(Event::Timer, t);
    assert!(a.contains(&Action::CancelOffload) && a.contains(&Action::StartLocal(LOCAL)), "{a:?}");
    let a = m.handle(Event::LocalDone, t + 90_000);
    let ans = answers(&a);
    assert_eq!(ans.len(), 1);
    assert_eq!((ans[0].ran, ans[0].ok, ans[0].fallback), (Ran::Local(LOCAL), true, Some(Fallback::EdgeTimeout)));
    // A late answer from the edge changes nothing.
    assert!(m.handle(Event::OffloadAnswered, t + 100_000).is_empty());
}

#[test]
fn edge_busy_falls_back_to_local_at_once() {
    let (mut m, _) = RequestMachine::start(offload_decision(false), 0, Some(150_000));
    let a = m.handle(Event::OffloadBusy, 20_000);
    assert_eq!(a.as_slice(), &[Action::StartLocal(LOCAL)]);
    let ans = answers(&m.handle(Event::LocalDone, 110_000));
    assert_eq!(ans[0].fallback, Some(Fallback::EdgeBusy));
    assert_eq!(ans[0].ran, Ran::Local(LOCAL));
    assert_eq!(ans[0].latency_us, 110_000);
}

#[test]
fn edge_error_with_failing_local_still_answers_once() {
    let (mut m, _) = RequestMachine::start(offload_decision(false), 0, Some(150_000));
    m.handle(Event::OffloadFailed, 1_000);
    let ans = answers(&m.handle(Event::LocalFailed, 2_000));
    assert_eq!(ans.len(), 1);
    assert!(!ans[0].ok);
}

#[test]
fn response_after_deadline_is_raced_by_a_local_run_started_in_time() {
    let dec = offload_decision(false);
    let (mut m, a) = RequestMachine::start(dec, 0, Some(400_000));
    let risk = timer(&a).unwrap();
    // Start local no later than deadline minus the local plan.
    assert!(dec.fallback_local_us < 400_000);
    assert_eq!(risk, 400_000 - dec.fallback_local_us);
    let a = m.handle(Event::Timer, risk);
    assert!(a.contains(&Action::StartLocal(LOCAL)), "{a:?}");
    assert!(!a.contains(&Action::CancelOffload), "the offload keeps racing");
    assert_eq!(timer(&a), Some(1_000_000));
    let a = m.handle(Event::LocalDone, risk + 80_000);
    let ans = answers(&a);
    assert_eq!(ans[0].ran, Ran::Local(LOCAL));
    assert_eq!(ans[0].fallback, Some(Fallback::DeadlineAtRisk));
    assert!(ans[0].raced);
    assert!(a.contains(&Action::CancelOffload));
    assert!(m.handle(Event::OffloadAnswered, 400_000).is_empty());
}

#[test]
fn hedge_keeps_the_first_answer_and_cancels_the_other() {
    let mut dec = offload_decision(false);
    dec.choice = Choice::Hedge { edge: EDGE, local: LOCAL };
    let (mut m, a) = RequestMachine::start(dec, 0, Some(60_000));
    assert!(a.contains(&Action::StartOffload(EDGE)) && a.contains(&Action::StartLocal(LOCAL)));
    let a = m.handle(Event::OffloadAnswered, 30_000);
    assert_eq!(answers(&a)[0].ran, Ran::Edge(EDGE));
    assert!(a.contains(&Action::CancelLocal));
    assert!(m.handle(Event::LocalDone, 40_000).is_empty());
}

#[test]
fn no_target_is_answered_at_once() {
    let mut dec = offload_decision(false);
    dec.choice = Choice::Nowhere;
    let (m, a) = RequestMachine::start(dec, 5, None);
    assert_eq!(answers(&a).len(), 1);
    assert!(m.is_answered());
}

/// Drives random decisions and random event orders: every path that was started reports
/// back at a random time (or, for the edge, never), timers fire when armed, duplicates and
/// stale events are thrown in. Exactly one answer per request, always.
#[test]
fn every_request_gets_exactly_one_answer_under_random_event_orders() {
    let base = offload_decision(false);
    let mut rng = Rng::new(42);
    for case in 0..20_000u64 {
        let mut dec = base;
        dec.choice = match rng.next_u64() % 4 {
            0 => Choice::Local(LOCAL),
            1 => Choice::Offload(EDGE),
            2 => Choice::Hedge { edge: EDGE, local: LOCAL },
            _ => Choice::Nowhere,
        };
        if rng.next_u64() % 4 == 0 {
            dec.fallback = None;
        }
        dec.edge_timeout_us = 1 + rng.next_u64() % 2_000_000;
        dec.fallback_local_us = rng.next_u64() % 200_000;
        dec.local_idle = rng.next_u64() % 2 == 0;
        dec.answer_by_us = if rng.next_u64() % 2 == 0 { None } else { Some(rng.next_u64() % 400_000) };
        let deadline = if rng.next_u64() % 3 == 0 { None } else { Some((rng.next_u64() % 300_000) as u32) };
        let (mut m, first) = RequestMachine::start(dec, 0, deadline);

        // Pending (time, event) pairs; the edge may never answer.
        let mut pending: Vec<(u64, Event)> = Vec::new();
        let mut timer_at: Option<u64> = None;
        let mut n_answers = 0;
        let mut apply = |actions: &[Action], now: u64, pending: &mut Vec<(u64, Event)>, timer_at: &mut Option<u64>, rng: &mut Rng| {
            for a in actions {
                match *a {
                    Action::StartLocal(_) => {
                        let ev = match rng.next_u64() % 6 {
                            0 => Event::LocalFailed,
                            1 => Event::LocalBusy,
                            _ => Event::LocalDone,
                        };
                        let at = now + rng.next_u64() % 300_000;
                        pending.push((now + rng.next_u64() % (at - now + 1), Event::LocalStarted));
                        pending.push((at, ev));
                    }
                    Action::StartOffload(_) => match rng.next_u64() % 5 {
                        0 => {} // silent edge
                        1 => pending.push((now + rng.next_u64() % 100_000, Event::OffloadBusy)),
                        2 => pending.push((now + rng.next_u64() % 100_000, Event::OffloadFailed)),
                        _ => pending.push((now + rng.next_u64() % 3_000_000, Event::OffloadAnswered)),
                    },
                    Action::SetTimer(t) => *timer_at = Some(t),
                    Action::Answer(a) => {
                        n_answers += 1;
                        if let Some(by) = dec.answer_by_us {
                            assert!(a.latency_us <= by, "case {case}: answered at {} after the deadline + grace {by}", a.latency_us);
                        }
                    }
                    Action::CancelLocal | Action::CancelOffload => {}
                }
            }
        };
        apply(&first, 0, &mut pending, &mut timer_at, &mut rng);
        // Noise: stale and duplicate events at random times.
        for _ in 0..(rng.next_u64() % 3) {
            let ev = [
                Event::OffloadAnswered,
                Event::LocalDone,
                Event::Timer,
                Event::OffloadBusy,
                Event::Superseded,
                Event::Cancelled,
                Event::LocalStarted,
            ][(rng.next_u64() % 7) as usize];
            pending.push((rng.next_u64() % 3_000_000, ev));
        }
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 100, "case {case}: no progress");
            let next_ev = pending.iter().enumerate().min_by_key(|(_, (t, _))| *t).map(|(i, (t, _))| (i, *t));
            let (now, ev) = match (next_ev, timer_at) {
                (Some((_, te)), Some(tt)) if tt <= te => {
                    timer_at = None;
                    (tt, Event::Timer)
                }
                (Some((i, _)), _) => {
                    let (t, e) = pending.remove(i);
                    (t, e)
                }
                (None, Some(tt)) => {
                    timer_at = None;
                    (tt, Event::Timer)
                }
                (None, None) => break,
            };
            let actions = m.handle(ev, now);
            apply(&actions, now, &mut pending, &mut timer_at, &mut rng);
        }
        assert_eq!(n_answers, 1, "case {case}: {dec:?} deadline {deadline:?}");
        assert!(m.is_answered());
    }
}

#[test]
fn local_races_at_once_only_if_the_runner_is_idle_and_local_could_answer_first() {
    // The deadline (30 ms) is below the local plan, so local cannot make it either way: a
    // race helps only if local could beat the edge.
    let dec = offload_decision(false);
    assert!(dec.fallback_local_us > 30_000, "{dec:?}");
    let edge_q = (f64::from(dec.reason.chosen.unwrap().quantile_ms) * 1e3) as u64;
    let start = |local_idle: bool, local_may_win: bool| {
        let d = Decision { local_idle, local_may_win, ..dec };
        let (_, a) = RequestMachine::start(d, 0, Some(30_000));
        timer(&a).unwrap()
    };
    // Idle runner, local could win: the race starts at once.
    assert_eq!(start(true, true), 0);
    // Local cannot beat the edge's plan: wait until the edge is overdue against it.
    assert_eq!(start(true, false), edge_q);
    // A busy runner: the same.
    assert_eq!(start(false, true), edge_q);
    // The decider fills the flag from its predictions: under 90 % load local (≈ 95 ms) is
    // far slower than this 100 Mbit/s edge.
    assert!(!dec.local_may_win, "{:?}", dec.reason);
}

fn local_decision(answer_by_us: Option<u64>) -> Decision {
    Decision {
        choice: Choice::Local(LOCAL),
        answer_by_us,
        ..offload_decision(false)
    }
}

#[test]
fn a_request_not_answered_by_deadline_plus_grace_is_answered_deadline_exceeded_then() {
    let (mut m, a) = RequestMachine::start(local_decision(Some(170_000)), 1_000, Some(150_000));
    assert_eq!(
        a.as_slice(),
        &[Action::StartLocal(LOCAL), Action::SetTimer(171_000)]
    );
    m.handle(Event::LocalStarted, 100_000);
    let a = m.handle(Event::Timer, 171_000);
    let ans = answers(&a);
    assert_eq!(
        (ans.len(), ans[0].kind, ans[0].ok, ans[0].latency_us),
        (1, AnswerKind::DeadlineExceeded, false, 170_000)
    );
    assert_eq!(ans[0].ran, Ran::Local(LOCAL));
    assert!(
        a.contains(&Action::CancelLocal),
        "the running run is stopped: {a:?}"
    );
    // The run's late result changes nothing.
    assert!(m.handle(Event::LocalDone, 200_000).is_empty());
}

#[test]
fn the_hard_deadline_stops_an_offload_and_its_fallback_race_together() {
    let dec = Decision {
        answer_by_us: Some(170_000),
        ..offload_decision(false)
    };
    let (mut m, a) = RequestMachine::start(dec, 0, Some(150_000));
    // The at-risk start comes first, then the hard deadline, not the edge's 1 s timeout.
    let risk = timer(&a).unwrap();
    assert!(risk < 170_000);
    let a = m.handle(Event::Timer, risk);
    assert!(a.contains(&Action::StartLocal(LOCAL)));
    assert_eq!(timer(&a), Some(170_000));
    let a = m.handle(Event::Timer, 170_000);
    assert_eq!(answers(&a)[0].kind, AnswerKind::DeadlineExceeded);
    assert!(
        a.contains(&Action::CancelLocal) && a.contains(&Action::CancelOffload),
        "{a:?}"
    );
}

#[test]
fn a_best_effort_request_has_no_hard_deadline() {
    let (mut m, a) = RequestMachine::start(local_decision(None), 0, Some(150_000));
    assert_eq!(a.as_slice(), &[Action::StartLocal(LOCAL)]);
    let ans = answers(&m.handle(Event::LocalDone, 900_000));
    assert_eq!(
        (ans[0].kind, ans[0].latency_us),
        (AnswerKind::Result, 900_000)
    );
}

#[test]
fn a_refused_local_run_is_answered_busy_unless_the_edge_still_runs() {
    let (mut m, _) = RequestMachine::start(local_decision(None), 0, None);
    assert_eq!(
        answers(&m.handle(Event::LocalBusy, 10))[0].kind,
        AnswerKind::Busy
    );
    let mut dec = offload_decision(false);
    dec.choice = Choice::Hedge {
        edge: EDGE,
        local: LOCAL,
    };
    let (mut m, _) = RequestMachine::start(dec, 0, None);
    assert!(
        answers(&m.handle(Event::LocalBusy, 10)).is_empty(),
        "the edge may still answer"
    );
    assert_eq!(
        answers(&m.handle(Event::OffloadAnswered, 50_000))[0].kind,
        AnswerKind::Result
    );
}

#[test]
fn decisions_to_refuse_are_answered_at_once_with_their_kind() {
    for (why, kind) in [
        (Why::LocalQueueFull, AnswerKind::Busy),
        (Why::DeadlineUnreachable, AnswerKind::DeadlineExceeded),
        (Why::NotAllowed, AnswerKind::Failed),
        (Why::NoTarget, AnswerKind::Failed),
    ] {
        let mut dec = offload_decision(false);
        dec.choice = Choice::Nowhere;
        dec.reason.why = why;
        let (_, a) = RequestMachine::start(dec, 0, Some(100_000));
        let ans = answers(&a);
        assert_eq!(
            (ans.len(), ans[0].kind, ans[0].latency_us),
            (1, kind, 0),
            "{why:?}"
        );
    }
}

#[test]
fn a_queued_frame_is_superseded_but_a_started_or_sent_one_is_not() {
    let (mut m, _) = RequestMachine::start(local_decision(None), 0, None);
    let a = m.handle(Event::Superseded, 5_000);
    assert_eq!(answers(&a)[0].kind, AnswerKind::Superseded);
    assert!(a.contains(&Action::CancelLocal));

    let (mut m, _) = RequestMachine::start(local_decision(None), 0, None);
    m.handle(Event::LocalStarted, 1_000);
    assert!(
        m.handle(Event::Superseded, 5_000).is_empty(),
        "already running: it finishes"
    );
    assert_eq!(
        answers(&m.handle(Event::LocalDone, 40_000))[0].kind,
        AnswerKind::Result
    );

    let (mut m, _) = RequestMachine::start(offload_decision(false), 0, None);
    assert!(
        m.handle(Event::Superseded, 5_000).is_empty(),
        "already sent: it is waited for"
    );
}

#[test]
fn a_cancelled_request_stops_every_path() {
    let mut dec = offload_decision(false);
    dec.choice = Choice::Hedge {
        edge: EDGE,
        local: LOCAL,
    };
    let (mut m, _) = RequestMachine::start(dec, 0, None);
    let a = m.handle(Event::Cancelled, 7_000);
    assert_eq!(answers(&a)[0].kind, AnswerKind::Cancelled);
    assert!(
        a.contains(&Action::CancelLocal) && a.contains(&Action::CancelOffload),
        "{a:?}"
    );
    assert!(m.handle(Event::OffloadAnswered, 9_000).is_empty());
}
