//! The rewrite: builds a new typed model in which every matched unit runs on i8 activations
//! (NHWC) and every other node is copied as it was, with conversions at the boundaries.

use std::collections::{HashMap, HashSet};

use tract_linalg::mmm::RoundingPolicy;
use tract_linalg::Scaler;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cast::cast;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::math;
use tract_onnx::tract_core::ops::source::TypedSource;

use super::ops::add::QAdd;
use super::ops::convert::{IntoQuantized, OutOfQuantized, Outside};
use super::ops::depthwise::QDepthwiseConv;
use super::ops::im2col::QIm2Col;
use super::params::{multipliers, FixedPointRequant, QParams};
use super::pattern::{dequantize_params, match_unit, quantize_params, ConvUnit, Unit, UnitKind};
use super::QuantError;

/// What the pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Units now running on integers, by kind label, in graph order: (root node name, kind).
    pub integer: Vec<(String, &'static str)>,
    /// Convolutions and additions between quantize/dequantize nodes left in floating point,
    /// with the reason.
    pub kept_float: Vec<String>,
}

impl Report {
    /// How many units of a kind run on integers.
    pub fn count(&self, kind: &str) -> usize {
        self.integer.iter().filter(|(_, k)| *k == kind).count()
    }
}

/// A quantized activation as the new model holds it: i8, and rows × channels (`[n·h·w, c]`) when
/// the original is NCHW.
#[derive(Debug, Clone, Copy)]
struct QValue {
    outlet: OutletId,
    q: QParams,
    /// The original NCHW shape, when held as rows × channels.
    nchw: Option<[usize; 4]>,
    /// The type the original graph had there (u8 or i8).
    was_u8: bool,
}

/// What an outlet of the original model has become.
#[derive(Debug, Clone, Copy)]
enum Value {
    /// The same tensor, same type and layout.
    Plain(OutletId),
    /// The output of a QuantizeLinear, held as [`QValue`].
    Quant(QValue),
    /// The output of a DequantizeLinear of a [`QValue`]: float, made only if a float op reads it.
    Deq(QValue),
}

pub(super) struct Rewriter<'m> {
    old: &'m TypedModel,
    new: TypedModel,
    values: HashMap<OutletId, Value>,
    /// Float or integer materializations of quantized values, per original outlet.
    materialized: HashMap<OutletId, OutletId>,
    units: HashMap<usize, Unit>,
    report: Report,
}

impl<'m> Rewriter<'m> {
    pub(super) fn new(old: &'m TypedModel) -> Result<Self, QuantError> {
        let mut units = HashMap::new();
        let mut report = Report::default();
        for node in old.nodes() {
            match match_unit(old, node) {
                Ok(Some(unit)) => {
                    units.insert(node.id, unit);
                }
                Ok(None) => {}
                Err(why) => report.kept_float.push(why),
            }
        }
        Ok(Self { old, new: TypedModel::default(), values: HashMap::new(), materialized: HashMap::new(), units, report })
    }

    /// The nodes the new model needs: what the outputs depend on, where a unit depends only on
    /// its dequantized inputs (not on its float conv/add and weights).
    fn needed(&self) -> Result<HashSet<usize>, QuantError> {
        let mut needed = HashSet::new();
        let mut stack: Vec<usize> = self.old.output_outlets()?.iter().map(|o| o.node).collect();
        while let Some(id) = stack.pop() {
            if !needed.insert(id) {
                continue;
            }
            match self.units.get(&id) {
                Some(unit) => stack.extend(unit.inputs.iter().map(|o| o.node)),
                None => stack.extend(self.old.node(id).inputs.iter().map(|o| o.node)),
            }
        }
        Ok(needed)
    }

    pub(super) fn run(mut self) -> Result<(TypedModel, Report), QuantError> {
        let needed = self.needed()?;
        for id in self.old.eval_order()? {
            if needed.contains(&id) {
                self.translate(id)?;
            }
        }
        let inputs: TVec<OutletId> = self.old.input_outlets()?.iter().map(|o| self.plain(*o)).collect::<Result<_, _>>()?;
        self.new.set_input_outlets(&inputs)?;
        let outputs: TVec<OutletId> = self.old.output_outlets()?.iter().map(|o| self.plain(*o)).collect::<Result<_, _>>()?;
        self.new.select_output_outlets(&outputs)?;
        for (old, new) in self.old.output_outlets()?.iter().zip(&outputs) {
            if let Some(label) = self.old.outlet_label(*old) {
                self.new.set_outlet_label(*new, label.to_string())?;
            }
        }
        Ok((self.new, self.report))
    }

    fn value(&self, outlet: OutletId) -> Result<Value, QuantError> {
        self.values.get(&outlet).copied().ok_or_else(|| QuantError::Internal(format!("{outlet:?} used before it was translated")))
    }

    /// The outlet in the new model holding what the original held at `outlet`, in its type and layout.
    fn plain(&mut self, outlet: OutletId) -> Result<OutletId, QuantError> {
        let (qv, to) = match self.value(outlet)? {
            Value::Plain(o) => return Ok(o),
            Value::Quant(qv) => (qv, if qv.was_u8 { Outside::U8 } else { Outside::I8 }),
            Value::Deq(qv) => (qv, Outside::Float { scale: qv.q.scale, zero_point: qv.q.zero_point }),
        };
        if let Some(o) = self.materialized.get(&outlet) {
            return Ok(*o);
        }
        let name = format!("{}.ferry_out", self.old.node(outlet.node).name);
        let o = self.new.wire_node(name, OutOfQuantized { to, nchw: qv.nchw }, &[qv.outlet])?[0];
        self.materialized.insert(outlet, o);
        Ok(o)
    }

    fn translate(&mut self, id: usize) -> Result<(), QuantError> {
        let node = self.old.node(id);
        if let Some(unit) = self.units.get(&id).cloned() {
            let inputs: Option<TVec<QValue>> = unit
                .inputs
                .iter()
                .map(|o| match self.values.get(o) {
                    Some(Value::Deq(qv)) => Some(*qv),
                    _ => None,
                })
                .collect();
            let inputs = inputs.ok_or_else(|| QuantError::Internal(format!("{}: unit inputs are not quantized", node.name)))?;
            let (outlet, nchw) = self.wire_unit(&node.name, &unit, &inputs)?;
            let was_u8 = quantize_params(node).is_some_and(|(_, u8)| u8);
            let q = QValue { outlet, q: unit.output, nchw, was_u8 };
            self.values.insert(OutletId::new(id, 0), Value::Quant(q));
            self.report.integer.push((node.name.clone(), unit.kind.label()));
            return Ok(());
        }
        // A dequantization of something the pass holds as i8: nothing to do until a float op reads it.
        if let Some(params) = dequantize_params(self.old, node) {
            match self.value(node.inputs[0])? {
                Value::Quant(qv) if super::pattern::same_params(qv.q, params) => {
                    self.values.insert(OutletId::new(id, 0), Value::Deq(qv));
                    return Ok(());
                }
                Value::Plain(o) if self.old.node(node.inputs[0].node).op_is::<TypedSource>() => {
                    // A quantized graph input: into the pass's representation once.
                    let fact = self.new.outlet_fact(o)?.clone();
                    let nchw = nchw_of(&fact);
                    let channels_last = nchw.is_some();
                    let was_u8 = fact.datum_type == u8::datum_type();
                    let from = if was_u8 { Outside::U8 } else { Outside::I8 };
                    let name = format!("{}.ferry_in", self.old.node(node.inputs[0].node).name);
                    let outlet = match self.materialized.get(&node.inputs[0]) {
                        Some(o) => *o,
                        None => self.new.wire_node(name, IntoQuantized { from, channels_last }, &[o])?[0],
                    };
                    self.materialized.insert(node.inputs[0], outlet);
                    let qv = QValue { outlet, q: params, nchw, was_u8 };
                    self.values.insert(OutletId::new(id, 0), Value::Deq(qv));
                    return Ok(());
                }
                _ => {}
            }
        }
        // A quantization of a float value (a graph input, a pooled vector): quantize here.
        if let Some((params, was_u8)) = quantize_params(node) {
            let input = self.plain(node.inputs[0])?;
            let fact = self.new.outlet_fact(input)?.clone();
            if fact.datum_type == f32::datum_type() && params.is_usable() {
                let nchw = nchw_of(&fact);
                let from = Outside::Float { scale: params.scale, zero_point: params.zero_point };
                let outlet = self.new.wire_node(&node.name, IntoQuantized { from, channels_last: nchw.is_some() }, &[input])?[0];
                let qv = QValue { outlet, q: params, nchw, was_u8 };
                self.values.insert(OutletId::new(id, 0), Value::Quant(qv));
                return Ok(());
            }
        }
        self.copy(id)
    }

    fn copy(&mut self, id: usize) -> Result<(), QuantError> {
        let node = self.old.node(id);
        let outlets = if node.op_is::<TypedSource>() {
            tvec![self.new.add_source(&node.name, node.outputs[0].fact.clone())?]
        } else {
            let inputs: TVec<OutletId> = node.inputs.iter().map(|o| self.plain(*o)).collect::<Result<_, _>>()?;
            self.new.wire_node(&node.name, node.op.clone(), &inputs)?
        };
        for (slot, o) in outlets.into_iter().enumerate() {
            self.values.insert(OutletId::new(id, slot), Value::Plain(o));
        }
        Ok(())
    }

    /// Wires `unit`; returns its output and the NCHW shape it stands for.
    fn wire_unit(&mut self, name: &str, unit: &Unit, inputs: &[QValue]) -> Result<(OutletId, Option<[usize; 4]>), QuantError> {
        let x = inputs[0];
        if let UnitKind::Add = &unit.kind {
            let (a, b) = (inputs[0], inputs[1]);
            if a.nchw != b.nchw {
                return Err(QuantError::Internal(format!("{name}: adding tensors of two layouts")));
            }
            let op = QAdd {
                a_mult: a.q.scale / unit.output.scale,
                a_zero: a.q.zero_point,
                b_mult: b.q.scale / unit.output.scale,
                b_zero: b.q.zero_point,
                y_zero: unit.output.zero_point,
            };
            return Ok((self.new.wire_node(name, op, &[a.outlet, b.outlet])?[0], a.nchw));
        }
        let (UnitKind::Pointwise(conv) | UnitKind::Depthwise(conv) | UnitKind::General(conv)) = &unit.kind else {
            return Err(QuantError::Internal(format!("{name}: unknown unit")));
        };
        let Some([n, c, h, w]) = x.nchw else {
            return Err(QuantError::Internal(format!("{name}: convolution input is not held channels last")));
        };
        if c != conv.in_channels || [h, w] != conv.window.input {
            return Err(QuantError::Internal(format!("{name}: input {:?} for {:?}", x.nchw, conv.window)));
        }
        let nchw = Some([n, conv.out_channels, conv.window.output[0], conv.window.output[1]]);
        let outlet = match &unit.kind {
            UnitKind::Depthwise(conv) => self.new.wire_node(name, depthwise_op(conv, unit.output, x.q)?, &[x.outlet])?[0],
            UnitKind::Pointwise(conv) => {
                let values = conv.weights.values.clone();
                wire_matmul(&mut self.new, name, x.outlet, values, conv, x.q, unit.output)?
            }
            _ => {
                let im2col = QIm2Col { window: conv.window.clone(), channels: conv.in_channels, x_zero: x.q.zero_point as i8 };
                let patches = self.new.wire_node(format!("{name}.im2col"), im2col, &[x.outlet])?[0];
                // OIHW rows → (ky, kx, c) rows, the order of the patches.
                let [kh, kw] = conv.window.kernel;
                let (cin, taps) = (conv.in_channels, kh * kw);
                let mut values = vec![0i8; conv.weights.values.len()];
                for (o, row) in conv.weights.values.chunks(cin * taps).enumerate() {
                    for c in 0..cin {
                        for t in 0..taps {
                            values[o * cin * taps + t * cin + c] = row[c * taps + t];
                        }
                    }
                }
                wire_matmul(&mut self.new, name, patches, values, conv, x.q, unit.output)?
            }
        };
        Ok((outlet, nchw))
    }
}

/// The concrete NCHW shape of a rank-4 fact.
fn nchw_of(fact: &TypedFact) -> Option<[usize; 4]> {
    match fact.shape.as_concrete()? {
        &[n, c, h, w] => Some([n, c, h, w]),
        _ => None,
    }
}

fn depthwise_op(conv: &ConvUnit, output: QParams, input: QParams) -> Result<QDepthwiseConv, QuantError> {
    let c = conv.out_channels;
    let taps = conv.window.kernel[0] * conv.window.kernel[1];
    if conv.weights.per_channel != taps || conv.in_channels != c {
        return Err(QuantError::Internal(format!("depthwise weights of {} per channel, {taps} taps", conv.weights.per_channel)));
    }
    let mut weights = vec![0i16; taps * c];
    for (ch, row) in conv.weights.values.chunks(taps).enumerate() {
        for (t, &v) in row.iter().enumerate() {
            weights[t * c + ch] = i16::from(v);
        }
    }
    let real = multipliers(input, &conv.weights.scales, output);
    let bias = conv.bias.iter().zip(&real).map(|(&b, &m)| (b as f64 * m) as f32).collect();
    Ok(QDepthwiseConv {
        window: conv.window.clone(),
        channels: c,
        weights,
        bias,
        multipliers: real.into_iter().map(|m| m as f32).collect(),
        x_zero: input.zero_point,
        y_zero: output.zero_point,
    })
}

/// `y[r, o] = requant(Σ_k x[r, k] × values[o, k], bias[o])` over rows × channels, with tract's
/// integer matrix product and a requantization it fuses into the kernel's epilogue.
fn wire_matmul(
    model: &mut TypedModel,
    name: &str,
    x: OutletId,
    values: Vec<i8>,
    conv: &ConvUnit,
    input: QParams,
    output: QParams,
) -> Result<OutletId, QuantError> {
    let o = conv.out_channels;
    let k = values.len() / o.max(1);
    let requant = FixedPointRequant::new(&multipliers(input, &conv.weights.scales, output))
        .ok_or_else(|| QuantError::Internal(format!("{name}: requantization multipliers out of range")))?;
    // Σ_k (x − zx) w = Σ_k x w − zx Σ_k w: the zero-point term is a constant per channel,
    // added before the multiplication (it can be far larger than the output range: zx is −128
    // after a ReLU); the bias joins after it, with the output zero point.
    let correction: Vec<i32> = conv.weights.row_sums().iter().map(|s| -input.zero_point * s).collect();
    let bias: Option<Vec<i32>> =
        conv.bias.iter().enumerate().map(|(c, &b)| requant.bias_term(c, b as f64, output.zero_point)).collect();
    let bias = bias.ok_or_else(|| QuantError::Internal(format!("{name}: bias out of the output's range")))?;
    let shift = |s: u32| ElementWiseOp(Box::new(math::QScale { scaler: Scaler::new(2f32.powi(-(s as i32)), RoundingPolicy::Even) }), None);

    let shape = model.outlet_fact(x)?.shape.to_tvec();
    if shape.len() != 2 || shape[1] != k.to_dim() {
        return Err(QuantError::Internal(format!("{name}: matmul input {shape:?}, {k} weights per channel")));
    }
    let w = model.add_const(format!("{name}.weights"), Tensor::from_shape(&[o, k], &values)?)?;
    let mut y = model.wire_node(format!("{name}.matmul"), EinSum::new("mk,ok->mo".parse()?, i32::datum_type()), &[x, w])?[0];
    if correction.iter().any(|&c| c != 0) {
        let c = model.add_const(format!("{name}.zero_point_correction"), Tensor::from_shape(&[1, o], &correction)?)?;
        y = model.wire_node(format!("{name}.correct_zero_point"), math::add(), &[y, c])?[0];
    }
    if requant.pre_shift > 0 {
        y = model.wire_node(format!("{name}.pre_shift"), shift(requant.pre_shift), &[y])?[0];
    }
    let m = model.add_const(format!("{name}.multiplier"), Tensor::from_shape(&[1, o], &requant.mult)?)?;
    y = model.wire_node(format!("{name}.scale"), math::mul(), &[y, m])?[0];
    let b = model.add_const(format!("{name}.bias"), Tensor::from_shape(&[1, o], &bias)?)?;
    y = model.wire_node(format!("{name}.add_bias"), math::add(), &[y, b])?[0];
    y = model.wire_node(format!("{name}.shift"), shift(requant.shift), &[y])?[0];
    let lo = model.add_const(format!("{name}.lo"), tensor0(-128i32).broadcast_into_rank(2)?)?;
    let hi = model.add_const(format!("{name}.hi"), tensor0(127i32).broadcast_into_rank(2)?)?;
    y = model.wire_node(format!("{name}.max"), math::max(), &[y, lo])?[0];
    y = model.wire_node(format!("{name}.min"), math::min(), &[y, hi])?[0];
    Ok(model.wire_node(name, cast(i8::datum_type()), &[y])?[0])
}
