//! Per-node profile of a model's optimized tract plan: where the time goes, and which kernel
//! each matrix product uses.
//!
//! ```sh
//! cargo run --release -p ferry-runtime --example profile -- models/efficientnet-lite0/efficientnet-lite0.int8.onnx [runs] [--float-qdq]
//! ```
//!
//! The model goes through the same load path as the runtime (`ferry_runtime::quant` integer
//! rewrite included); `--float-qdq` skips the rewrite to show tract's own plan of a QDQ model.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or_else(|| TractError::msg("usage: profile MODEL.onnx [RUNS]"))?;
    let rest: Vec<String> = args.collect();
    let runs: usize = rest.iter().find_map(|a| a.parse().ok()).unwrap_or(30);
    let rewrite = !rest.iter().any(|a| a == "--float-qdq");

    // Load and optimize exactly as the runtime does: one thread, the input shape fixed.
    let model = tract_onnx::onnx().model_for_path(&path)?.with_input_fact(0, f32::fact([1, 3, 224, 224]).into())?;
    let mut typed = model.into_typed()?;
    if rewrite {
        let (rewritten, report) = ferry_runtime::quant::integerize(&typed)?;
        println!("integer rewrite: {} units ({} pointwise, {} depthwise, {} other conv, {} add), {} kept in float",
            report.integer.len(), report.count("pointwise conv"), report.count("depthwise conv"), report.count("conv"), report.count("add"), report.kept_float.len());
        for why in &report.kept_float {
            println!("  kept float: {why}");
        }
        typed = rewritten;
    }
    let optimized = typed.into_optimized()?;
    if rest.iter().any(|a| a == "--nodes") {
        for node in optimized.nodes() {
            let inputs: Vec<usize> = node.inputs.iter().map(|o| o.node).collect();
            println!("#{} {} [{}] <- {inputs:?} {:?}", node.id, node.op.name(), node.name, node.outputs[0].fact);
        }
    }
    let plan = optimized.into_runnable()?;
    let mut state = plan.spawn()?;
    let input: Tensor = tract_ndarray::Array4::<f32>::from_shape_fn((1, 3, 224, 224), |(_, c, y, x)| ((c * 7 + y * 3 + x) % 17) as f32 / 8.5 - 1.0).into();

    let mut per_node: BTreeMap<usize, Duration> = BTreeMap::new();
    let mut totals = Vec::new();
    for run in 0..runs + 3 {
        let start = Instant::now();
        let mut times: Vec<(usize, Duration)> = Vec::new();
        state.run_plan_with_eval(tvec!(input.clone().into_tvalue()), |ctx, op_state, node, inputs| {
            let t = Instant::now();
            let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
            times.push((node.id, t.elapsed()));
            out
        })?;
        if run >= 3 {
            totals.push(start.elapsed());
            for (id, d) in times {
                *per_node.entry(id).or_default() += d;
            }
        }
    }
    totals.sort();
    let model = plan.model();
    let median = totals[totals.len() / 2];
    let sum: Duration = per_node.values().sum::<Duration>() / runs as u32;
    println!("model: {path}\nruns: {runs}, median wall {:.2} ms, sum of node times {:.2} ms\n", ms(median), ms(sum));

    let mut by_op: BTreeMap<String, (usize, Duration)> = BTreeMap::new();
    for (id, d) in &per_node {
        let e = by_op.entry(model.node(*id).op.name().to_string()).or_default();
        e.0 += 1;
        e.1 += *d / runs as u32;
    }
    let mut by_op: Vec<_> = by_op.into_iter().collect();
    by_op.sort_by_key(|(_, (_, d))| std::cmp::Reverse(*d));
    println!("| op | nodes | ms per run | share |\n|---|---:|---:|---:|");
    for (name, (n, d)) in &by_op {
        println!("| {name} | {n} | {:.2} | {:.1} % |", ms(*d), 100.0 * d.as_secs_f64() / sum.as_secs_f64());
    }
    println!("\nslowest nodes:\n\n| node | op | ms | detail |\n|---|---|---:|---|");
    let mut nodes: Vec<_> = per_node.iter().map(|(id, d)| (*id, *d / runs as u32)).collect();
    nodes.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
    for (id, d) in nodes.iter().take(25) {
        let node = model.node(*id);
        let info = node.op.info().unwrap_or_default().join("; ");
        println!("| {} | {} | {:.3} | {} |", node.name, node.op.name(), ms(*d), info.replace('|', "/"));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
