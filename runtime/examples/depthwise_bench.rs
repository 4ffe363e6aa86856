//! Times the integer depthwise kernel alone on EfficientNet-Lite0's shapes (single thread; the
//! fastest of 30 runs, which a busy machine disturbs least).
use ferry_runtime::quant::ops::depthwise::{QDepthwiseConv, Window};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

fn main() -> TractResult<()> {
    let mut total = 0.0;
    for (h, k, s, c) in [(112, 3, 1, 32), (112, 3, 2, 96), (56, 3, 1, 144), (56, 5, 2, 144), (28, 5, 1, 240), (28, 3, 2, 240), (14, 3, 1, 480), (14, 5, 1, 480), (14, 5, 1, 672), (14, 5, 2, 672), (7, 5, 1, 1152), (7, 3, 1, 1152)] {
        let pad = (k - 1) / 2;
        let o = (h + 2 * pad - k) / s + 1;
        let window = Window { input: [h, h], kernel: [k, k], strides: [s, s], pad_before: [pad, pad], output: [o, o] };
        let op = QDepthwiseConv {
            window,
            channels: c,
            weights: (0..k * k * c).map(|i| (i % 200) as i16 - 100).collect(),
            bias: vec![1.0; c],
            multipliers: vec![1e-3; c],
            x_zero: -128,
            y_zero: 3,
        };
        let x = Tensor::from_shape(&[h * h, c], &(0..h * h * c).map(|i| (i % 251) as i8).collect::<Vec<_>>())?;
        let mut ts = vec![];
        for _ in 0..30 {
            let t = std::time::Instant::now();
            op.eval(&EvalContext::out_of_plan(), tvec!(x.clone().into_tvalue()))?;
            ts.push(t.elapsed().as_secs_f64() * 1e3);
        }
        ts.sort_by(f64::total_cmp);
        let macs = (o * o * k * k * c) as f64;
        println!("{h}x{h}x{c} k{k} s{s}: {:.3} ms, {:.2} GMAC/s", ts[0], macs / ts[0] / 1e6);
        total += ts[0];
    }
    println!("total {total:.2} ms");
    Ok(())
}
