//! `ferry eval`: a model's accuracy on a labelled image set, every variant against the labels
//! and against the FP32 variant on the same image, on the fixed split of
//! [`ferry_runtime::eval::Split`].

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ferry_runtime::eval::{LabelledSet, Proportion, Split, SplitPart, Tally, TOP_K};
use ferry_runtime::forms::{self, Form, InputQuant};
use ferry_runtime::split::{Cut, Head, Splitter, Tail};
use ferry_runtime::{preprocess, Cancel, Inference, LocalModel, ModelStore, Precision, Threads, TractEngine};

use crate::cli::EvalArgs;

/// The environment variable naming the labelled set when `--data` does not.
pub const DATA_ENV: &str = "FERRY_EVAL_DATA";

/// Where the shared set lives relative to the repository: `<repo>/../shared/eval/imagenet-val-650`.
const SHARED_SET: &str = "../shared/eval/imagenet-val-650";

/// The labelled set to use: `--data`, else `$FERRY_EVAL_DATA`, else the shared set beside the
/// repository the model store is in. `None` when none of them exists.
pub fn data_dir(arg: Option<&PathBuf>, store: &ModelStore) -> Option<PathBuf> {
    if let Some(dir) = arg {
        return Some(dir.clone());
    }
    if let Some(dir) = std::env::var_os(DATA_ENV) {
        return Some(PathBuf::from(dir));
    }
    let repo = store.dir().parent()?;
    let dir = repo.join(SHARED_SET);
    dir.join("labels.csv").is_file().then_some(dir)
}

/// One variant's figures.
#[derive(Debug, Clone)]
pub struct VariantFigures {
    /// Its precision.
    pub precision: Precision,
    /// Against the labels and against FP32.
    pub tally: Tally,
    /// Mean compute per image, ms.
    pub mean_ms: f64,
}

/// One input form's figures (the FP32 model on it).
#[derive(Debug, Clone)]
pub struct FormFigures {
    /// The form.
    pub form: Form,
    /// Against the labels and against the FP32 model on the original image.
    pub tally: Tally,
    /// Mean bytes on the wire per image (the payload only).
    pub mean_bytes: f64,
    /// Mean time to make the form on this machine from the original bytes (decode, shape,
    /// encode: what the device does before an offload), ms (0 for the original).
    pub encode_ms: f64,
}

/// One cut's figures (split inference, FP32 halves).
#[derive(Debug, Clone)]
pub struct SplitFigures {
    /// The cut.
    pub cut: Cut,
    /// Against the labels and against the whole FP32 model on the same image.
    pub tally: Tally,
    /// Mean head compute, ms (this machine).
    pub head_ms: f64,
    /// Mean tail compute, ms (this machine).
    pub tail_ms: f64,
    /// Mean time to make the crossing tensor from the original bytes (decode, preprocess,
    /// head, quantize: what the device does before a split offload), ms.
    pub make_ms: f64,
}

/// What `ferry eval` measured.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The set's folder.
    pub data: PathBuf,
    /// The part of the split.
    pub part: SplitPart,
    /// Images evaluated.
    pub images: usize,
    /// FP32 first, then the other variants the manifest lists.
    pub variants: Vec<VariantFigures>,
    /// The input forms asked for.
    pub forms: Vec<FormFigures>,
    /// Every candidate cut, if asked for; with the whole FP32 model's mean compute, ms.
    pub splits: Vec<SplitFigures>,
}

/// Runs `ferry eval`.
pub fn run(args: &EvalArgs) -> Result<()> {
    let store = super::store(&args.models);
    let Some(data) = data_dir(args.data.as_ref(), &store) else {
        bail!(
            "no labelled set: pass --data DIR or set {DATA_ENV} (a folder with labels.csv and images/; \
             the shared one is {SHARED_SET} beside the repository)"
        );
    };
    let part = match args.split.as_str() {
        "calibration" => SplitPart::Calibration,
        "all" => SplitPart::All,
        _ => SplitPart::Evaluation,
    };
    let options = Options { forms: args.forms.clone(), fp32_only: args.fp32_only, splits: args.splits, threads: Threads(args.threads.into()) };
    let evaluation = evaluate(&store, &args.model, &data, part, args.limit.map(|n| n as usize), &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&args.model, &evaluation))?);
    } else {
        print_table(&args.model, &evaluation);
    }
    Ok(())
}

/// What to measure besides the FP32 model on the original images.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Input forms.
    pub forms: Vec<Form>,
    /// Leave out the variants other than FP32.
    pub fp32_only: bool,
    /// Every candidate cut of split inference.
    pub splits: bool,
    /// Threads for tract.
    pub threads: Threads,
}

/// Measures every variant of `model` on `part` of the set in `data` (the first `limit` images
/// of it if given).
pub fn evaluate(store: &ModelStore, model: &str, data: &std::path::Path, part: SplitPart, limit: Option<usize>, options: &Options) -> Result<Evaluation> {
    let (forms, fp32_only) = (options.forms.as_slice(), options.fp32_only);
    let engine = TractEngine::new(options.threads);
    let reference = store.load(&engine, model, Precision::Fp32)?;
    let mut others: Vec<LocalModel> = Vec::new();
    for variant in &reference.manifest().variants {
        if variant.precision != Precision::Fp32 && !fp32_only {
            others.push(store.load(&engine, model, variant.precision)?);
        }
    }
    let classes = reference.manifest().output.classes;
    let set = LabelledSet::load(data, classes)?;
    let mut images = Split::of(&set).part(part);
    if let Some(n) = limit {
        images.truncate(n);
    }
    let mut tallies = vec![Tally::default(); 1 + others.len()];
    let mut compute = vec![0.0f64; 1 + others.len()];
    let mut form_tallies = vec![Tally::default(); forms.len()];
    let mut form_bytes = vec![0.0f64; forms.len()];
    let mut form_secs = vec![0.0f64; forms.len()];
    let quant = InputQuant::of(reference.manifest());
    let halves = if options.splits { load_halves(&engine, reference.manifest())? } else { Vec::new() };
    let mut split_tallies = vec![Tally::default(); halves.len()];
    let mut split_secs = vec![(0.0f64, 0.0f64, 0.0f64); halves.len()];
    let started = Instant::now();
    for image in &images {
        let original = std::fs::read(&image.path).with_context(|| image.path.display().to_string())?;
        let decode_started = Instant::now();
        let decoded = preprocess::decode_image(&original, &image.path.display().to_string())?;
        let decode_s = decode_started.elapsed().as_secs_f64();
        let first = reference.infer_image(&decoded, TOP_K)?;
        let Some(top) = first.top.first().cloned() else {
            bail!("model `{model}` gave no classes for {}", image.path.display());
        };
        tallies[0].record(image.class, &first.top, &top);
        compute[0] += first.compute.as_secs_f64();
        for (i, other) in others.iter().enumerate() {
            let answer = other.infer_image(&decoded, TOP_K).with_context(|| image.path.display().to_string())?;
            tallies[i + 1].record(image.class, &answer.top, &top);
            compute[i + 1] += answer.compute.as_secs_f64();
        }
        for (i, form) in forms.iter().enumerate() {
            let (bytes, make_s, answer) = run_form(&reference, *form, &original, &quant, &first)?;
            form_secs[i] += make_s;
            form_bytes[i] += bytes as f64;
            form_tallies[i].record(image.class, &answer.top, &top);
        }
        if !halves.is_empty() {
            let prep_started = Instant::now();
            let tensor = preprocess::image_to_tensor(reference.manifest(), &decoded);
            let prep_s = decode_s + prep_started.elapsed().as_secs_f64();
            for (i, (head, tail)) in halves.iter().enumerate() {
                let made = Instant::now();
                let (q, head_time) = head.run_tensor(&tensor, &Cancel::new())?;
                let make_s = prep_s + made.elapsed().as_secs_f64();
                let cut = head.cut();
                let answer = tail.infer(&cut.shape, q.scale, q.zero_point, &q.values, TOP_K)?;
                split_tallies[i].record(image.class, &answer.top, &top);
                split_secs[i].0 += head_time.as_secs_f64();
                split_secs[i].1 += answer.compute.as_secs_f64();
                split_secs[i].2 += make_s;
            }
        }
    }
    tracing::info!(images = images.len(), took_s = started.elapsed().as_secs_f64(), "evaluated");
    let n = images.len().max(1) as f64;
    let precisions = std::iter::once(Precision::Fp32).chain(others.iter().map(LocalModel::precision));
    let variants = precisions
        .zip(tallies)
        .zip(compute)
        .map(|((precision, tally), secs)| VariantFigures { precision, tally, mean_ms: secs * 1e3 / n })
        .collect();
    let forms = forms
        .iter()
        .enumerate()
        .map(|(i, form)| FormFigures {
            form: *form,
            tally: form_tallies[i],
            mean_bytes: form_bytes[i] / n,
            encode_ms: if *form == Form::Original { 0.0 } else { form_secs[i] * 1e3 / n },
        })
        .collect();
    let splits = halves
        .iter()
        .zip(split_tallies)
        .zip(split_secs)
        .map(|(((head, _), tally), (h, t, m))| SplitFigures { cut: head.cut().clone(), tally, head_ms: h * 1e3 / n, tail_ms: t * 1e3 / n, make_ms: m * 1e3 / n })
        .collect();
    Ok(Evaluation { data: data.to_path_buf(), part, images: images.len(), variants, forms, splits })
}

/// The head and tail of every candidate cut of the model, cut into the cache folder.
fn load_halves(engine: &TractEngine, manifest: &ferry_runtime::Manifest) -> Result<Vec<(Head, Tail)>> {
    let splitter = Splitter::open(std::sync::Arc::new(manifest.clone()))?;
    let cache = ferry_runtime::split::cache_dir();
    splitter
        .cuts()
        .iter()
        .map(|cut| Ok((splitter.load_head(engine, cut, &cache)?, splitter.load_tail(engine, cut, &cache)?)))
        .collect()
}

/// Makes `form` of one image as a device would ([`forms::make`]: decode, shape, encode),
/// takes it apart as the edge would, and runs the FP32 model on it: the payload's bytes, the
/// time the device took to make it, and the answer. (The original form's answer is the
/// reference's own.)
fn run_form(
    model: &LocalModel,
    form: Form,
    original: &[u8],
    quant: &InputQuant,
    reference: &Inference,
) -> Result<(usize, f64, Inference)> {
    let manifest = model.manifest();
    let shape = manifest.input.shape.clone();
    let started = Instant::now();
    let made = forms::make(manifest, form, original)?;
    let make_s = started.elapsed().as_secs_f64();
    Ok(match made {
        forms::Made::Original => (original.len(), 0.0, reference.clone()),
        forms::Made::Jpeg(jpeg) => {
            let tensor = forms::tensor_of_shaped(manifest, &jpeg, "the shaped JPEG")?;
            (jpeg.len(), make_s, model.infer_tensor(&shape, &tensor, TOP_K)?)
        }
        forms::Made::Int8(q) => {
            let tensor = forms::dequantize(manifest, quant, &q)?;
            (q.len(), make_s, model.infer_tensor(&shape, &tensor, TOP_K)?)
        }
    })
}

fn proportion_json(p: &Proportion) -> serde_json::Value {
    let (low, high) = p.wilson95();
    serde_json::json!({"hits": p.hits, "n": p.n, "percent": p.percent(), "low": low, "high": high})
}

/// The figures as JSON: every proportion with its Wilson 95 % interval, and the split.
pub fn to_json(model: &str, e: &Evaluation) -> serde_json::Value {
    let variants: serde_json::Map<String, serde_json::Value> = e
        .variants
        .iter()
        .map(|v| {
            let mut o = serde_json::json!({
                "top1": proportion_json(&v.tally.top1),
                "top5": proportion_json(&v.tally.top5),
                "mean_ms": v.mean_ms,
            });
            if v.precision != Precision::Fp32 {
                o["agreement_with_fp32"] = proportion_json(&v.tally.agreement);
                o["agreement_where_fp32_confident"] = proportion_json(&v.tally.confident_agreement);
            }
            (v.precision.to_string(), o)
        })
        .collect();
    let forms: serde_json::Map<String, serde_json::Value> = e
        .forms
        .iter()
        .map(|f| {
            let o = serde_json::json!({
                "mean_bytes": f.mean_bytes,
                "encode_ms": f.encode_ms,
                "top1": proportion_json(&f.tally.top1),
                "top5": proportion_json(&f.tally.top5),
                "agreement_with_original": proportion_json(&f.tally.agreement),
                "agreement_where_confident": proportion_json(&f.tally.confident_agreement),
            });
            (f.form.to_string(), o)
        })
        .collect();
    let splits: Vec<serde_json::Value> = e
        .splits
        .iter()
        .map(|s| {
            serde_json::json!({
                "cut": s.cut.name(),
                "tensor": s.cut.tensor,
                "shape": s.cut.shape,
                "bytes": s.cut.values(),
                "make_ms": s.make_ms,
                "head_ms": s.head_ms,
                "tail_ms": s.tail_ms,
                "top1": proportion_json(&s.tally.top1),
                "agreement_with_whole": proportion_json(&s.tally.agreement),
                "agreement_where_confident": proportion_json(&s.tally.confident_agreement),
            })
        })
        .collect();
    serde_json::json!({
        "model": model,
        "data": e.data.display().to_string(),
        "split": {"seed": Split::SEED, "calibration": Split::CALIBRATION, "part": e.part.name(), "images": e.images},
        "variants": variants,
        "forms_fp32": forms,
        "cuts_fp32": splits,
    })
}

fn print_table(model: &str, e: &Evaluation) {
    println!(
        "{model} on {} images of the {} part of {} (split seed {:#x}, first {} for calibration); 95 % Wilson intervals",
        e.images,
        e.part.name(),
        e.data.display(),
        Split::SEED,
        Split::CALIBRATION
    );
    println!("{:<7} {:<32} {:<32} {:<32} {:>8}", "variant", "top-1", "top-5", "top-1 agreement with fp32", "mean ms");
    for v in &e.variants {
        let agreement = if v.precision == Precision::Fp32 { "(reference)".to_string() } else { v.tally.agreement.describe() };
        println!(
            "{:<7} {:<32} {:<32} {:<32} {:>8.1}",
            v.precision.to_string(),
            v.tally.top1.describe(),
            v.tally.top5.describe(),
            agreement,
            v.mean_ms
        );
    }
    if !e.splits.is_empty() {
        println!("\nsplit inference, fp32 halves, the crossing tensor as u8, against the whole model:");
        println!("{:<10} {:>8} {:>8} {:>8} {:>8} {:<32} {:<32} {:<32}", "cut", "bytes", "make ms", "head ms", "tail ms", "top-1", "top-1 agreement", "agreement where p >= 0.5");
        for s in &e.splits {
            println!(
                "{:<10} {:>8} {:>8.2} {:>8.2} {:>8.2} {:<32} {:<32} {:<32}",
                s.cut.name(),
                s.cut.values(),
                s.make_ms,
                s.head_ms,
                s.tail_ms,
                s.tally.top1.describe(),
                s.tally.agreement.describe(),
                s.tally.confident_agreement.describe()
            );
        }
    }
    if e.forms.is_empty() {
        return;
    }
    println!("\ninput forms, fp32 model, against it on the original image:");
    println!("{:<12} {:>10} {:>10} {:<32} {:<32} {:<32}", "form", "mean B", "make ms", "top-1", "top-1 agreement", "agreement where p >= 0.5");
    for f in &e.forms {
        println!(
            "{:<12} {:>10.0} {:>10.2} {:<32} {:<32} {:<32}",
            f.form.to_string(),
            f.mean_bytes,
            f.encode_ms,
            f.tally.top1.describe(),
            f.tally.agreement.describe(),
            f.tally.confident_agreement.describe()
        );
    }
}
