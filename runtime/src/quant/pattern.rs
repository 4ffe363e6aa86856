//! Finding the quantized units in a typed (not yet decluttered) model: a QuantizeLinear whose
//! input is a convolution or an addition fed by DequantizeLinear nodes, which is how a QDQ
//! ONNX export spells "this op runs on int8".

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_core::ops::nn::DataFormat;
use tract_onnx::tract_core::ops::quant::{DequantizeLinearF32, QuantizeLinearI8, QuantizeLinearU8};
use tract_onnx::tract_core::ops::source::TypedSource;

use super::ops::depthwise::Window;
use super::params::{quantize_bias, recover_int8_weights, ChannelWeights, QParams};

/// Parameters of a QuantizeLinear node (per tensor), and whether it produces u8.
pub fn quantize_params(node: &TypedNode) -> Option<(QParams, bool)> {
    let ew = node.op_as::<ElementWiseOp>()?;
    if let Some(q) = ew.0.downcast_ref::<QuantizeLinearU8>() {
        return Some((QParams::from_u8(q.scale.recip(), q.zero_point), true));
    }
    let q = ew.0.downcast_ref::<QuantizeLinearI8>()?;
    Some((QParams::from_i8(q.scale.recip(), q.zero_point), false))
}

/// Parameters of a DequantizeLinear node (per tensor), given the type it reads.
pub fn dequantize_params(model: &TypedModel, node: &TypedNode) -> Option<QParams> {
    let dq = node.op_as::<DequantizeLinearF32>()?;
    let input = model.outlet_fact(*node.inputs.first()?).ok()?;
    let zero_point = if input.datum_type == u8::datum_type() {
        dq.zero_point - 128
    } else if input.datum_type == i8::datum_type() {
        dq.zero_point
    } else {
        return None;
    };
    let q = QParams { scale: dq.scale, zero_point };
    q.is_usable().then_some(q)
}

/// Whether two parameter sets describe the same quantization (they come from one ONNX pair).
pub fn same_params(a: QParams, b: QParams) -> bool {
    a.zero_point == b.zero_point && (a.scale - b.scale).abs() <= 1e-6 * a.scale.abs().max(b.scale.abs())
}

/// The value of an outlet when it is a constant, including a constant passed through a cast
/// (how a dequantized bias looks before decluttering).
pub fn const_value(model: &TypedModel, outlet: OutletId) -> Option<Arc<Tensor>> {
    let fact = model.outlet_fact(outlet).ok()?;
    if let Some(k) = &fact.konst {
        return Some(k.clone());
    }
    let node = model.node(outlet.node);
    if let Some(k) = node.op_as::<Const>() {
        return Some(k.val().clone());
    }
    if node.inputs.len() == 1 && node.outputs.len() == 1 && node.op_is::<tract_onnx::tract_core::ops::cast::Cast>() {
        let input = const_value(model, node.inputs[0])?;
        let out = node.op.eval_out_of_plan(tvec!(input.into_tvalue())).ok()??;
        return out.into_iter().next().map(|v| v.into_arc_tensor());
    }
    None
}

/// One quantized op, rooted at its QuantizeLinear node.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The QuantizeLinear node.
    pub root: usize,
    /// The DequantizeLinear outlets it reads (the unit's inputs).
    pub inputs: TVec<OutletId>,
    /// Output quantization.
    pub output: QParams,
    /// What it computes.
    pub kind: UnitKind,
}

/// The kinds of quantized ops the pass runs on integers.
#[derive(Debug, Clone)]
pub enum UnitKind {
    /// 1×1, stride 1, no padding: a matrix product.
    Pointwise(ConvUnit),
    /// One filter per channel.
    Depthwise(ConvUnit),
    /// Any other single-group 2-D convolution: patches then a matrix product.
    General(ConvUnit),
    /// Addition of two tensors of the same shape.
    Add,
}

impl UnitKind {
    /// A short label for reports.
    pub fn label(&self) -> &'static str {
        match self {
            UnitKind::Pointwise(_) => "pointwise conv",
            UnitKind::Depthwise(_) => "depthwise conv",
            UnitKind::General(_) => "conv",
            UnitKind::Add => "add",
        }
    }
}

/// A convolution's integer ingredients.
#[derive(Debug, Clone)]
pub struct ConvUnit {
    /// The input quantization (from its DequantizeLinear).
    pub input: QParams,
    /// Weights, `[out channel][in channels × kh × kw]` (OIHW order).
    pub weights: ChannelWeights,
    /// Bias at the accumulator scale.
    pub bias: Vec<i64>,
    /// Geometry, in NHWC terms.
    pub window: Window,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
}

/// Why a QuantizeLinear did not become an integer unit (kept in floating point).
pub type Refusal = String;

/// Inspects the QuantizeLinear node `root`: `Ok(Some(unit))` when it roots an integer unit,
/// `Ok(None)` when it is a plain quantization (of a graph input, say), `Err(why)` when it
/// follows a conv or add the pass cannot run on integers.
pub fn match_unit(model: &TypedModel, root: &TypedNode) -> Result<Option<Unit>, Refusal> {
    let Some((output, _)) = quantize_params(root) else { return Ok(None) };
    if !output.is_usable() {
        return Err("unusable output quantization".into());
    }
    let producer = model.node(root.inputs[0].node);
    let single_use = producer.outputs.len() == 1 && producer.outputs[0].successors.len() == 1;
    let quantized_input = |slot: usize| -> Option<(OutletId, QParams)> {
        let dq = model.node(producer.inputs.get(slot)?.node);
        let params = dequantize_params(model, dq)?;
        // The dequantized value must come from a QuantizeLinear with the same parameters (then
        // the pass holds it as i8), or from an integer graph input.
        let source = model.node(dq.inputs[0].node);
        let consistent = match quantize_params(source) {
            Some((q, _)) => same_params(q, params),
            None => source.op_is::<TypedSource>(),
        };
        consistent.then_some((OutletId::new(dq.id, 0), params))
    };
    if let Some(conv) = producer.op_as::<Conv>() {
        if !single_use {
            return Err(format!("{}: its float output has other uses", producer.name));
        }
        let (dq, input) = quantized_input(0).ok_or_else(|| format!("{}: input is not dequantized int8", producer.name))?;
        let unit = conv_unit(model, producer, conv, input).map_err(|e| format!("{}: {e}", producer.name))?;
        let kind = if conv.group > 1 {
            UnitKind::Depthwise(unit)
        } else if unit.window.kernel == [1, 1] && unit.window.strides == [1, 1] && unit.window.pad_before == [0, 0] && unit.window.output == unit.window.input {
            UnitKind::Pointwise(unit)
        } else {
            UnitKind::General(unit)
        };
        return Ok(Some(Unit { root: root.id, inputs: tvec![dq], output, kind }));
    }
    if producer.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<Add>()) {
        if !single_use {
            return Err(format!("{}: its float output has other uses", producer.name));
        }
        let (a, _) = quantized_input(0).ok_or_else(|| format!("{}: input 0 is not dequantized int8", producer.name))?;
        let (b, _) = quantized_input(1).ok_or_else(|| format!("{}: input 1 is not dequantized int8", producer.name))?;
        let (fa, fb) = (model.outlet_fact(a).map_err(|e| e.to_string())?, model.outlet_fact(b).map_err(|e| e.to_string())?);
        if fa.shape != fb.shape || fa.shape.as_concrete().is_none() {
            return Err(format!("{}: broadcasting or symbolic add", producer.name));
        }
        return Ok(Some(Unit { root: root.id, inputs: tvec![a, b], output, kind: UnitKind::Add }));
    }
    Ok(None)
}

fn conv_unit(model: &TypedModel, node: &TypedNode, conv: &Conv, input: QParams) -> Result<ConvUnit, String> {
    let spec = &conv.pool_spec;
    if conv.q_params.is_some() || node.inputs.len() != 3 {
        return Err("already a quantized conv".into());
    }
    if spec.data_format != DataFormat::NCHW || conv.kernel_fmt != KernelFormat::OIHW || spec.rank() != 2 {
        return Err(format!("layout {:?}/{:?} rank {}", spec.data_format, conv.kernel_fmt, spec.rank()));
    }
    if spec.dilations().iter().any(|&d| d != 1) {
        return Err("dilated".into());
    }
    let (cin, cout, group) = (spec.input_channels, spec.output_channels, conv.group);
    if group != 1 && !(group == cin && group == cout) {
        return Err(format!("grouped ({group} groups, {cin} → {cout} channels)"));
    }
    let shape = model
        .outlet_fact(node.inputs[0])
        .ok()
        .and_then(|f| f.shape.as_concrete().map(|s| s.to_vec()))
        .ok_or("symbolic input shape")?;
    if shape.len() != 4 || shape[1] != cin {
        return Err(format!("input shape {shape:?}"));
    }
    let padding = spec.computed_padding(&shape[2..]);
    let window = Window {
        input: [shape[2], shape[3]],
        kernel: [spec.kernel_shape[0], spec.kernel_shape[1]],
        strides: [spec.stride(0), spec.stride(1)],
        pad_before: [padding[0].pad_before, padding[1].pad_before],
        output: [padding[0].convoluted, padding[1].convoluted],
    };
    let kernel = const_value(model, node.inputs[1]).ok_or("weights are not constant")?;
    let kernel = kernel.cast_to::<f32>().map_err(|e| e.to_string())?;
    let kernel = kernel.to_plain_array_view::<f32>().map_err(|e| e.to_string())?;
    let kernel = kernel.as_slice().ok_or("weights not contiguous")?;
    let weights = recover_int8_weights(kernel, cout).ok_or("weights are not int8 per output channel")?;
    let bias = match const_value(model, node.inputs[2]) {
        Some(b) if b.len() == cout => {
            let b = b.cast_to::<f32>().map_err(|e| e.to_string())?;
            let b = b.to_plain_array_view::<f32>().map_err(|e| e.to_string())?;
            quantize_bias(b.as_slice().ok_or("bias not contiguous")?, input.scale, &weights.scales).ok_or("bias out of range")?
        }
        Some(b) if b.len() == 1 && b.cast_to_scalar::<f32>().is_ok_and(|v| v == 0.0) => vec![0; cout],
        _ => return Err("bias is not a constant vector".into()),
    };
    Ok(ConvUnit { input, weights, bias, window, in_channels: cin, out_channels: cout })
}
