//! The integer matrix kernel for each product, chosen on this host by timing the candidates.
//!
//! tract-linalg picks an i8 × i8 → i32 kernel by rules of thumb per instruction set. They can be
//! far off: on an Intel Xeon with AMX it takes the AMX tile kernel for EfficientNet's pointwise
//! convolutions, whose depths (16–96) fill a fraction of a 64-byte tile row, and the INT8 model
//! runs slower than its FP32 original. This module measures instead of guessing:
//!
//! - [`measure`] finds every integer matrix product (an `EinSum` accumulating in i32) in a typed
//!   model, rebuilds each alone (its weights, an input of the real shape), lets tract optimize it
//!   once per kernel that could compute it on this CPU, and times each a few runs (median);
//! - the fastest is kept in a process-wide table keyed by the product's shape as tract's kernel
//!   selection sees it (m, k, n), and written to a cache file per host ([`Cache`]) so that the
//!   next load reads it instead of timing;
//! - a dispatch tier registered with tract-linalg (`MmmTier`, above every built-in tier) answers
//!   tract's kernel selection from that table; a shape not in it is left to tract's own tiers.
//!
//! Only public tract-linalg interfaces are used (the tier registry and `MmmDispatch::suitable`),
//! so the same mechanism could be offered to tract as a measured tier.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use tract_linalg::isa::{Arch, IsaSet};
use tract_linalg::mmm::{Query, Suitable};
use tract_linalg::mmm_tiers::MmmTier;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;

/// A product's shape as tract's kernel selection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape {
    /// Rows of the packed weight side.
    pub m: usize,
    /// The reduced depth.
    pub k: usize,
    /// Columns (the activations' rows for a pointwise convolution).
    pub n: usize,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.m, self.k, self.n)
    }
}

/// One candidate kernel timed on one shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// The kernel's name in tract-linalg.
    pub kernel: String,
    /// Median of the timed runs.
    pub median: Duration,
}

/// What was chosen for one shape, and on what evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The product's shape.
    pub shape: Shape,
    /// The kernel tract's own tiers pick.
    pub default: String,
    /// The kernel kept (the fastest measured; the default when nothing beat it by
    /// [`MARGIN`]).
    pub chosen: String,
    /// Every candidate measured (empty when the choice came from the cache).
    pub timings: Vec<Timing>,
}

/// A candidate must beat tract's own pick by this fraction to replace it: timing noise on a
/// busy board must not swap kernels back and forth between loads.
pub const MARGIN: f64 = 0.05;

/// Timed runs per candidate, and the time budget after which fewer are enough.
const RUNS: usize = 7;
const BUDGET: Duration = Duration::from_millis(60);

/// The table the tier answers from.
static CHOSEN: RwLock<Option<HashMap<Shape, &'static str>>> = RwLock::new(None);
/// Kernel names, interned once each (the tier must answer with a `&'static str`).
static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

thread_local! {
    /// While a single product is timed: the kernel to force, and the query tract asked with.
    static PROBE: RefCell<Option<Probe>> = const { RefCell::new(None) };
}

#[derive(Debug, Default)]
struct Probe {
    force: Option<&'static str>,
    seen: Option<(Shape, Vec<String>)>,
}

fn intern(name: &str) -> &'static str {
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.push(leaked);
    leaked
}

fn shape_of(query: &Query) -> Option<Shape> {
    Some(Shape { m: query.m?, k: query.k?, n: query.n? })
}

/// The tier: a forced kernel while timing, else the table's choice for this shape.
fn preferred(_isa: &IsaSet, acc: DatumType, query: &Query, suitable: &[Suitable]) -> Option<&'static str> {
    if acc != DatumType::I32 {
        return None;
    }
    let shape = shape_of(query)?;
    let probed = PROBE.with(|p| {
        let mut p = p.borrow_mut();
        let probe = p.as_mut()?;
        let names = suitable.iter().filter(|(k, _, pe)| k.arch().is_some() && pe.is_none()).map(|(k, _, _)| k.name().to_string()).collect();
        probe.seen = Some((shape, names));
        Some(probe.force)
    });
    match probed {
        Some(force) => force,
        None => CHOSEN.read().unwrap_or_else(|p| p.into_inner()).as_ref()?.get(&shape).copied(),
    }
}

inventory::submit! {
    MmmTier { arch: Some(Arch::X86_64), precedence: 200, name: "ferry-measured", applies: |_| true, preferred }
}
inventory::submit! {
    MmmTier { arch: Some(Arch::Aarch64), precedence: 200, name: "ferry-measured", applies: |_| true, preferred }
}
inventory::submit! {
    MmmTier { arch: Some(Arch::Arm), precedence: 200, name: "ferry-measured", applies: |_| true, preferred }
}

/// Puts choices into the table the tier answers from.
pub fn install(choices: &[Choice]) {
    let mut table = CHOSEN.write().unwrap_or_else(|p| p.into_inner());
    let table = table.get_or_insert_with(HashMap::new);
    for c in choices {
        table.insert(c.shape, intern(&c.chosen));
    }
}

/// Empties the table: tract's own tiers pick every kernel again (for before/after profiles).
pub fn uninstall() {
    *CHOSEN.write().unwrap_or_else(|p| p.into_inner()) = None;
}

/// The kernel each matrix product of an optimized model runs, by node name.
pub fn kernels_of(model: &TypedModel) -> Vec<(String, String)> {
    model
        .nodes
        .iter()
        .filter_map(|n| n.op_as::<OptMatMul>().map(|op| (n.name.clone(), op.mmm.iter().map(|k| k.name().to_string()).collect::<Vec<_>>().join("|"))))
        .collect()
}

/// One integer product of a model, alone: its weights and an input of the real shape.
fn alone(model: &TypedModel, node: &TypedNode, op: &EinSum) -> TractResult<TypedModel> {
    let mut m = TypedModel::default();
    let mut inputs = tvec!();
    for (ix, outlet) in node.inputs.iter().enumerate() {
        let fact = model.outlet_fact(*outlet)?;
        let wire = match &fact.konst {
            Some(k) => m.add_const(format!("k{ix}"), k.clone())?,
            None => m.add_source(format!("x{ix}"), fact.without_value())?,
        };
        inputs.push(wire);
    }
    let out = m.wire_node("product", op.clone(), &inputs)?;
    m.select_output_outlets(&out)?;
    Ok(m)
}

fn integer_products(model: &TypedModel) -> Vec<(&TypedNode, &EinSum)> {
    model
        .nodes
        .iter()
        .filter_map(|n| n.op_as::<EinSum>().map(|op| (n, op)))
        .filter(|(_, op)| op.operating_dt == DatumType::I32)
        .collect()
}

/// Optimizes `product` with `force` (or tract's own pick), returning the shape tract asked
/// about, the kernels it could have used, the one it took, and the runnable plan.
fn optimize_with(product: &TypedModel, force: Option<&'static str>) -> TractResult<(Option<(Shape, Vec<String>)>, String, Arc<TypedSimplePlan>)> {
    PROBE.with(|p| *p.borrow_mut() = Some(Probe { force, seen: None }));
    let optimized = product.clone().into_optimized();
    let seen = PROBE.with(|p| p.borrow_mut().take()).and_then(|p| p.seen);
    let optimized = optimized?;
    let kernel = kernels_of(&optimized).into_iter().next().map(|(_, k)| k).unwrap_or_default();
    Ok((seen, kernel, optimized.into_runnable()?))
}

fn time(plan: &Arc<TypedSimplePlan>, inputs: &TVec<TValue>) -> TractResult<Duration> {
    let mut state = plan.spawn()?;
    state.run(inputs.clone())?; // warm: buffers, caches
    let start = Instant::now();
    let mut runs = Vec::with_capacity(RUNS);
    while runs.len() < RUNS && (runs.len() < 3 || start.elapsed() < BUDGET) {
        let t = Instant::now();
        state.run(inputs.clone())?;
        runs.push(t.elapsed());
    }
    runs.sort();
    Ok(runs[runs.len() / 2])
}

/// Measures the candidate kernels of every integer product in `model` whose shape is not in
/// `known`, and returns the choices for them (one per distinct shape).
pub fn measure(model: &TypedModel, known: &BTreeMap<Shape, String>) -> TractResult<Vec<Choice>> {
    let mut choices: Vec<Choice> = Vec::new();
    for (node, op) in integer_products(model) {
        let product = alone(model, node, op)?;
        let (seen, default, plan) = optimize_with(&product, None)?;
        let Some((shape, candidates)) = seen else { continue }; // tract did not ask: nothing to choose
        if known.contains_key(&shape) || choices.iter().any(|c| c.shape == shape) {
            continue;
        }
        let inputs: TVec<TValue> = product
            .input_outlets()?
            .iter()
            .map(|o| {
                let fact = product.outlet_fact(*o)?;
                let shape = fact.shape.as_concrete().ok_or_else(|| TractError::msg(format!("{}: symbolic input shape", node.name)))?;
                Ok(Tensor::zero_dt(fact.datum_type, shape)?.into_tvalue())
            })
            .collect::<TractResult<_>>()?;
        let mut timings = vec![Timing { kernel: default.clone(), median: time(&plan, &inputs)? }];
        for name in candidates.iter().filter(|c| **c != default) {
            let (_, got, plan) = optimize_with(&product, Some(intern(name)))?;
            if got != *name {
                continue; // tract could not take it for this product after all
            }
            timings.push(Timing { kernel: got, median: time(&plan, &inputs)? });
        }
        let base = timings[0].median.as_secs_f64();
        let best = timings.iter().min_by(|a, b| a.median.cmp(&b.median)).map(|t| t.clone()).unwrap_or_else(|| timings[0].clone());
        let chosen = if best.median.as_secs_f64() < base * (1.0 - MARGIN) { best.kernel } else { default.clone() };
        choices.push(Choice { shape, default, chosen, timings });
    }
    Ok(choices)
}

/// The choices of one host, kept in a file so that a load need not time again.
///
/// One line per shape: `m k n kernel`. The file is named after what makes the choice valid —
/// the CPU (model name and the instruction-set features tract detected) and tract's version —
/// so another board, or another tract, never reads it.
#[derive(Debug, Clone)]
pub struct Cache {
    path: PathBuf,
}

/// The most lines a cache file may have.
const MAX_LINES: usize = 10_000;

impl Cache {
    /// The cache file for this host under `dir`.
    pub fn in_dir(dir: &Path) -> Cache {
        Cache { path: dir.join("kernels").join(format!("{}.txt", host_key())) }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file holds; nothing when it is absent or unreadable, and no line that does not
    /// parse (a damaged cache costs a re-measurement, never a load).
    pub fn read(&self) -> BTreeMap<Shape, String> {
        let Ok(text) = std::fs::read_to_string(&self.path) else { return BTreeMap::new() };
        text.lines()
            .take(MAX_LINES)
            .filter_map(|line| {
                let mut f = line.split_whitespace();
                let (m, k, n, kernel) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?, f.next()?);
                (f.next().is_none() && kernel.len() < 100).then(|| (Shape { m, k, n }, kernel.to_string()))
            })
            .collect()
    }

    /// Adds `choices` to the file (best effort: a read-only cache only costs time).
    pub fn write(&self, known: &BTreeMap<Shape, String>, choices: &[Choice]) -> std::io::Result<()> {
        let mut all = known.clone();
        for c in choices {
            all.insert(c.shape, c.chosen.clone());
        }
        let text: String = all.iter().map(|(s, k)| format!("{} {} {} {k}\n", s.m, s.k, s.n)).collect();
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// What the choice depends on, as a file name: tract's version, the CPU model, the features.
fn host_key() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("model name") || l.starts_with("CPU part")).map(|l| l.to_string()))
        .unwrap_or_default();
    let isa = format!("{:?}", tract_linalg::isa::native());
    let digest = crc32fast::hash(format!("{cpu}|{isa}|{}", env!("CARGO_PKG_VERSION")).as_bytes());
    format!("tract-{}-{digest:08x}", TRACT_VERSION)
}

/// The tract-linalg these kernels belong to (a new tract has other kernels and other rules).
const TRACT_VERSION: &str = "0.23.9";

/// Chooses the integer kernels for `model` on this host: the cached choices where the cache
/// has them, measured ones for the rest (and then cached), and installs them for the tier.
pub fn choose(model: &TypedModel, cache: Option<&Cache>) -> TractResult<Vec<Choice>> {
    let known = cache.map(Cache::read).unwrap_or_default();
    let measured = measure(model, &known)?;
    let mut all: Vec<Choice> = known
        .iter()
        .map(|(shape, kernel)| Choice { shape: *shape, default: String::new(), chosen: kernel.clone(), timings: vec![] })
        .collect();
    all.extend(measured.iter().cloned());
    install(&all);
    if let (Some(cache), false) = (cache, measured.is_empty()) {
        if let Err(e) = cache.write(&known, &measured) {
            tracing::warn!(cache = %cache.path().display(), "cannot write the kernel cache: {e}");
        }
    }
    Ok(measured)
}
