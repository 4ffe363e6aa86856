//! Go/no-go for integer kernels in tract: one pointwise (1×1) convolution as tract's F32 matrix
//! product against i8 × i8 → i32 followed by the per-channel fixed-point requantization the
//! `quant` pass uses (which tract fuses into the kernel), single thread, EfficientNet-Lite0 shapes.
//! Activations are rows × channels (`[h·w, c]`), as the pass holds them.
//!
//! ```sh
//! cargo run --release -p ferry-runtime --example pointwise_gonogo
//! ```
use std::time::Instant;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cast::cast;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_linalg::mmm::RoundingPolicy;
use tract_linalg::Scaler;

fn time(plan: &Arc<TypedSimplePlan>, input: Tensor) -> TractResult<f64> {
    let mut state = plan.spawn()?;
    for _ in 0..5 { state.run(tvec!(input.clone().into_tvalue()))?; }
    let mut ts = vec![];
    for _ in 0..40 { let t = Instant::now(); state.run(tvec!(input.clone().into_tvalue()))?; ts.push(t.elapsed().as_secs_f64() * 1e3); }
    ts.sort_by(f64::total_cmp);
    Ok(ts[ts.len() / 2])
}

fn f32_model(h: usize, w: usize, ci: usize, co: usize) -> TractResult<TypedModel> {
    let mut m = TypedModel::default();
    let x = m.add_source("x", f32::fact([h * w, ci]))?;
    let k = m.add_const("k", Tensor::from_shape(&[co, ci], &vec![0.01f32; co * ci])?)?;
    let y = m.wire_node("mm", EinSum::new("mi,oi->mo".parse()?, f32::datum_type()), &[x, k])?;
    let b = m.add_const("b", Tensor::from_shape(&[1, co], &vec![0.1f32; co])?)?;
    let y = m.wire_node("bias", math::add(), &[y[0], b])?;
    let lo = m.add_const("lo", tensor0(0f32).broadcast_into_rank(2)?)?;
    let hi = m.add_const("hi", tensor0(6f32).broadcast_into_rank(2)?)?;
    let y = m.wire_node("max", math::max(), &[y[0], lo])?;
    let y = m.wire_node("min", math::min(), &[y[0], hi])?;
    m.select_output_outlets(&y)?;
    Ok(m)
}

fn i8_model(h: usize, w: usize, ci: usize, co: usize, fused: bool) -> TractResult<TypedModel> {
    let mut m = TypedModel::default();
    let x = m.add_source("x", i8::fact([h * w, ci]))?;
    let kv: Vec<i8> = (0..co * ci).map(|i| ((i * 7) % 255) as i8).collect();
    let k = m.add_const("k", Tensor::from_shape(&[co, ci], &kv)?)?;
    let y = m.wire_node("mm", EinSum::new("mi,oi->mo".parse()?, i32::datum_type()), &[x, k])?;
    if !fused { m.select_output_outlets(&y)?; return Ok(m); }
    let b = m.add_const("b", Tensor::from_shape(&[1, co], &vec![100i32; co])?)?;
    let y = m.wire_node("bias", math::add(), &[y[0], b])?;
    let pre = ElementWiseOp(Box::new(math::QScale { scaler: Scaler::new(2f32.powi(-3), RoundingPolicy::Even) }), None);
    let y = m.wire_node("pre", pre, &y)?;
    let mult = m.add_const("multiplier", Tensor::from_shape(&[1, co], &(0..co as i32).map(|c| 3000 + c).collect::<Vec<_>>())?)?;
    let y = m.wire_node("mult", math::mul(), &[y[0], mult])?;
    let shift = ElementWiseOp(Box::new(math::QScale { scaler: Scaler::new(2f32.powi(-22), RoundingPolicy::Even) }), None);
    let y = m.wire_node("shift", shift, &y)?;
    let zp = m.add_const("zero_point", tensor0(-128i32).broadcast_into_rank(2)?)?;
    let y = m.wire_node("zp", math::add(), &[y[0], zp])?;
    let lo = m.add_const("lo", tensor0(-128i32).broadcast_into_rank(2)?)?;
    let hi = m.add_const("hi", tensor0(127i32).broadcast_into_rank(2)?)?;
    let y = m.wire_node("max", math::max(), &[y[0], lo])?;
    let y = m.wire_node("min", math::min(), &[y[0], hi])?;
    let y = m.wire_node("cast", cast(i8::datum_type()), &y)?;
    m.select_output_outlets(&y)?;
    Ok(m)
}

fn main() -> TractResult<()> {
    for (h, w, ci, co) in [(112, 112, 16, 96), (56, 56, 24, 144), (14, 14, 480, 80), (7, 7, 1152, 320), (7, 7, 320, 1280)] {
        let f = f32_model(h, w, ci, co)?.into_optimized()?;
        let q = i8_model(h, w, ci, co, true)?.into_optimized()?;
        let raw = i8_model(h, w, ci, co, false)?.into_optimized()?;
        let tf = time(&f.clone().into_runnable()?, Tensor::zero::<f32>(&[h * w, ci])?)?;
        let tq = time(&q.clone().into_runnable()?, Tensor::zero::<i8>(&[h * w, ci])?)?;
        let tr = time(&raw.clone().into_runnable()?, Tensor::zero::<i8>(&[h * w, ci])?)?;
        println!("{h}x{w}x{ci}->{co}: f32 {tf:.3} ms, i8 fused-requant {tq:.3} ms, i8->i32 only {tr:.3} ms, ratio {:.2}", tq / tf);
        for (tag, m) in [("i8", &q), ("f32", &f)] {
            for n in m.nodes().iter().filter(|n| n.op.name() == "OptMatMul") {
                println!("    {tag}: {}", n.op.info()?.join(" ; "));
            }
        }
    }
    Ok(())
}
