//! The integer rewrite (`ferry_runtime::quant`) against tract's floating-point evaluation of the
//! same QDQ graph, on the shipped EfficientNet-Lite0 INT8 model and real images:
//!
//! - node by node: every unit the pass rewrites (each conv and add between DequantizeLinear and
//!   QuantizeLinear) is cut out of the model with the quantized inputs the reference produced
//!   on a real image, and run both ways: the integer output stays within one quantization step
//!   of the float one, and differs in few places (rounding ties);
//! - end to end: the whole rewritten model gives the same top-1 as the float QDQ graph wherever
//!   the latter is confident, and logits close to it.

mod common;

use std::collections::HashMap;

use ferry_runtime::preprocess;
use ferry_runtime::quant::{self, pattern};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::SimplePlan;

const MODEL: &str = "efficientnet-lite0/efficientnet-lite0.int8.onnx";

fn typed_model() -> TypedModel {
    let path = common::models_dir().join(MODEL);
    tract_onnx::onnx()
        .model_for_path(&path)
        .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, 224, 224]).into()))
        .and_then(|m| m.into_typed())
        .expect("the shipped INT8 model loads")
}

fn image_input(name: &str) -> Tensor {
    let store = common::store();
    let manifest = store.manifest("efficientnet-lite0").unwrap();
    let image = preprocess::load_image(&common::models_dir().join("images").join(name)).unwrap();
    Tensor::from_shape(&[1, 3, 224, 224], &preprocess::image_to_tensor(&manifest, &image)).unwrap()
}

/// Runs `model` unoptimized (tract's reference evaluation of each op) and keeps every node's
/// first output, by node name.
fn run_keeping_all(model: &TypedModel, input: Tensor) -> HashMap<String, TValue> {
    let plan = SimplePlan::new(model.clone()).unwrap();
    let mut state = plan.spawn().unwrap();
    let mut kept = HashMap::new();
    state
        .run_plan_with_eval(tvec!(input.into_tvalue()), |ctx, op_state, node, inputs| {
            let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs)?;
            kept.insert(node.name.clone(), out[0].clone());
            Ok::<_, TractError>(out)
        })
        .unwrap();
    kept
}

/// Copies `outlet` of `from` into `to`, recursively, turning each outlet in `cut` (the unit's
/// DequantizeLinear inputs) into a graph source.
fn copy_back(from: &TypedModel, to: &mut TypedModel, outlet: OutletId, cut: &[OutletId], done: &mut HashMap<OutletId, OutletId>) -> OutletId {
    if let Some(o) = done.get(&outlet) {
        return *o;
    }
    let node = from.node(outlet.node);
    let new = if cut.contains(&outlet) {
        to.add_source(format!("{}.cut", node.name), from.outlet_fact(outlet).unwrap().without_value()).unwrap()
    } else {
        let inputs: TVec<OutletId> = node.inputs.iter().map(|i| copy_back(from, to, *i, cut, done)).collect();
        to.wire_node(&node.name, node.op.clone(), &inputs).unwrap()[outlet.slot]
    };
    done.insert(outlet, new);
    new
}

#[test]
fn every_rewritten_unit_stays_within_one_step_of_the_float_qdq_graph() {
    let model = typed_model();
    let reference = run_keeping_all(&model, image_input("cat.jpg"));
    let mut checked = 0;
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for node in model.nodes() {
        let Ok(Some(unit)) = pattern::match_unit(&model, node) else { continue };
        // The unit alone: its quantized inputs (the QuantizeLinear outputs its DequantizeLinear
        // nodes read) become sources.
        let cut: Vec<OutletId> = unit.inputs.iter().map(|dq| model.node(dq.node).inputs[0]).collect();
        let mut mini = TypedModel::default();
        let mut done = HashMap::new();
        let out = copy_back(&model, &mut mini, OutletId::new(node.id, 0), &cut, &mut done);
        let sources: TVec<OutletId> = cut.iter().map(|c| done[c]).collect();
        mini.set_input_outlets(&sources).unwrap();
        mini.select_output_outlets(&[out]).unwrap();
        let inputs: TVec<TValue> = cut.iter().map(|c| reference[&model.node(c.node).name].clone()).collect();

        let float = SimplePlan::new(mini.clone().into_optimized().unwrap()).unwrap().run(inputs.clone()).unwrap().remove(0);
        let (rewritten, report) = quant::integerize(&mini).unwrap();
        assert_eq!(report.integer.len(), 1, "{}: {:?}", node.name, report);
        let integer = SimplePlan::new(rewritten.into_optimized().unwrap()).unwrap().run(inputs).unwrap().remove(0);

        assert_eq!(float.shape(), integer.shape(), "{}", node.name);
        let (f, i) = (float.to_plain_array_view::<u8>().unwrap(), integer.to_plain_array_view::<u8>().unwrap());
        let diffs: Vec<i16> = f.iter().zip(i.iter()).map(|(a, b)| (i16::from(*a) - i16::from(*b)).abs()).collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let off = diffs.iter().filter(|d| **d != 0).count() as f64 / diffs.len() as f64;
        println!("{:60} {:15} max diff {max} step, {:.3} % differ", node.name, unit.kind.label(), off * 100.0);
        assert!(max <= 1, "{}: integer and float differ by {max} steps", node.name);
        assert!(off <= 0.02, "{}: {:.2} % of outputs differ", node.name, off * 100.0);
        checked += 1;
        *kinds.entry(unit.kind.label()).or_default() += 1;
    }
    println!("{checked} units checked: {kinds:?}");
    // EfficientNet-Lite0: stem, 16 depthwise, 16 + 15 pointwise (project, expand) + head, 9 adds.
    assert_eq!(checked, 58);
    assert_eq!(kinds["depthwise conv"], 16);
    assert_eq!(kinds["pointwise conv"], 32);
    assert_eq!(kinds["conv"], 1);
    assert_eq!(kinds["add"], 9);
}

#[test]
fn the_rewritten_model_agrees_with_the_float_qdq_graph_end_to_end() {
    let model = typed_model();
    let float = model.clone().into_optimized().unwrap().into_runnable().unwrap();
    let (rewritten, report) = quant::integerize(&model).unwrap();
    assert!(report.kept_float.is_empty(), "{:?}", report.kept_float);
    let integer = rewritten.into_optimized().unwrap().into_runnable().unwrap();
    let mut images: Vec<_> = std::fs::read_dir(common::models_dir().join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    images.sort();
    let (mut same, mut worst) = (0, 0f32);
    for name in &images {
        let x = image_input(name);
        let a = float.run(tvec!(x.clone().into_tvalue())).unwrap().remove(0);
        let b = integer.run(tvec!(x.into_tvalue())).unwrap().remove(0);
        let (a, b) = (a.to_plain_array_view::<f32>().unwrap().to_owned(), b.to_plain_array_view::<f32>().unwrap().to_owned());
        let top = |v: &tract_ndarray::ArrayD<f32>| v.iter().enumerate().fold((0, f32::MIN), |m, (i, &x)| if x > m.1 { (i, x) } else { m });
        let ((ta, la), (tb, _)) = (top(&a), top(&b));
        let p = 1.0 / a.iter().map(|x| (x - la).exp()).sum::<f32>();
        let diff = a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        let spread = a.iter().fold(f32::MIN, |m, &x| m.max(x)) - a.iter().fold(f32::MAX, |m, &x| m.min(x));
        println!("{name:16} float-QDQ top-1 {ta} (p {p:.3}), integer {tb}, max logit diff {diff:.3} (logit range {spread:.1})");
        if p >= 0.3 {
            assert_eq!(ta, tb, "{name}: confident float QDQ top-1 changed");
        }
        same += usize::from(ta == tb);
        worst = worst.max(diff / spread);
    }
    println!("top-1 same as float QDQ on {same}/{}; worst logit difference {:.1} % of the logit range", images.len(), worst * 100.0);
    assert!(worst < 0.1, "logits drift {:.1} % of their range", worst * 100.0);
}
