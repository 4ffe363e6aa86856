//! `ferry bench local --profile-out FILE`: the board profile `ferry-sim --board FILE` reads
//! (`ferry_decide::sim::BoardProfile`, whose `to_toml` writes it), from this run's figures and
//! what else this command can measure or compute here:
//!
//! - local compute: the run's mean and σ per model, precision and thread count (1 and 2), of
//!   the runs inside Tukey's far fences (another job taking the CPU mid-run is left out);
//! - the edge's compute: not measurable here. Taken as the same engine on the same machine:
//!   the local FP32 figure at one thread (ferry-edge runs each request on one worker thread,
//!   `threads_per_worker = 1`), and the file's `source` says so;
//! - `cpu.load_k`: measured, efficientnet-lite0 FP32 at one thread alternating between an idle
//!   machine and one spinning thread per core (background load 1 = every core busy);
//! - `cpu.throttle_c`: not measurable here (a firmware limit): `--throttle-c`, said so;
//! - bytes: computed with ferry-protocol's encoder from the bundled inputs in `models/images`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use ferry_decide::sim::board::{BoardProfile, CpuProfile, ModelProfile, Models, Timing, Variant};
use ferry_protocol::{
    encoded_request_len, encoded_response_len, DeviceId, EdgeTimings, ImageFormat, Input, ModelName, Request,
    Response, Shape, Status, Tensor, TopK,
};
use ferry_runtime::{preprocess, ModelStore, Precision, Threads, TractEngine};

use super::load::load_k;
use super::machine::{cpu_name, niceness, utc_date};
use super::VariantFigures;
use crate::cli::BenchLocalArgs;

/// Classes per answer: ferry-edge's default `top_k` (firmware-configs/edge.toml).
const TOP_K: usize = 5;
/// The device id in the requests sized here: firmware-configs/agent.toml's.
const DEVICE_ID: &str = "dev-1";

/// How a model's requests travel: an image as the JPEG the client uploaded (the local API and
/// `ferry offload` forward its bytes), digits as its input tensor.
#[derive(Clone, Copy)]
enum Sent {
    Jpeg,
    Tensor,
}

/// The simulator's two models, how each is sent, and which bundled images stand for its inputs.
const MODELS: [(&str, Sent, &str); 2] = [("efficientnet-lite0", Sent::Jpeg, "jpg"), ("digits", Sent::Tensor, "png")];

/// Writes the profile of this run to `path`.
pub fn write(args: &BenchLocalArgs, store: &ModelStore, figures: &[VariantFigures], path: &Path, load_avg: &str) -> Result<()> {
    let throttle_c = args.throttle_c.context("--profile-out needs --throttle-c")?;
    // Every figure the run should have made first, before the extra measurements.
    let mut timings = Vec::new();
    for (name, _, _) in MODELS {
        timings.push((variant(figures, name, Precision::Fp32)?, variant(figures, name, Precision::Int8)?));
    }
    let (load_k, load_how) = load_k(args, store)?;
    let mut models = Vec::new();
    for ((name, sent, ext), (fp32, int8)) in MODELS.into_iter().zip(timings) {
        let (up, down, how) = sizes(store, name, sent, ext)?;
        // The edge: the same engine on the same machine, one worker thread per request.
        let edge = fp32.threads_1;
        models.push(ModelProfile { up_bytes: up, down_bytes: down, bytes: how, edge, fp32, int8, forms: Default::default() });
    }
    let [image, digits]: [ModelProfile; 2] = models.try_into().map_err(|_| anyhow::anyhow!("two models expected"))?;
    let board = match &args.board_name {
        Some(b) => b.clone(),
        None => path.file_stem().and_then(|s| s.to_str()).unwrap_or("board").to_owned(),
    };
    let profile = BoardProfile {
        board,
        source: source(args, figures, load_avg, &load_how),
        cpu: CpuProfile { load_k, throttle_c },
        models: Models { efficientnet_lite0: image, digits },
    };
    let text = profile.to_toml().context("the measured profile")?;
    std::fs::write(path, text).with_context(|| format!("{}", path.display()))
}

/// One precision's figures at 1 and 2 threads, mean and σ rounded to 0.1 µs.
fn variant(figures: &[VariantFigures], model: &str, precision: Precision) -> Result<Variant> {
    let at = |threads: u16| -> Result<Timing> {
        let f = figures
            .iter()
            .find(|f| f.model == model && f.precision == precision && f.threads == threads)
            .with_context(|| format!("--profile-out needs {model} {precision} at {threads} thread(s): run every model (no --model, or both)"))?;
        Ok(Timing { mean_ms: round4(f.mean_ms), sigma_ms: round4(f.sigma_ms) })
    };
    Ok(Variant { threads_1: at(1)?, threads_2: at(2)? })
}

pub(super) fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// What the profile says about its own figures.
fn source(args: &BenchLocalArgs, figures: &[VariantFigures], load_avg: &str, load_how: &str) -> String {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let out: Vec<String> = figures
        .iter()
        .filter(|f| f.far_out > 0)
        .map(|f| format!("{} {} at {} thread(s) {} of {}", f.model, f.precision, f.threads, f.far_out, f.iterations))
        .collect();
    let far_out = if out.is_empty() { "none".to_owned() } else { out.join(", ") };
    format!(
        "measured by `ferry {}` (ferry {}, tract engine, nice {}) on {}, {} UTC; 1-minute load average {load_avg} at the start. \
         Local compute: mean and sample σ of {} timed runs per variant after {} warm-up, FP32 and INT8 interleaved, \
         on a fixed pseudo-random input, at 1 and at 2 threads, leaving out the runs outside Tukey's far fences \
         (another job took the CPU mid-run: {far_out}). \
         edge: not measured by bench local; taken as the same engine on the same machine, the local FP32 figure \
         at 1 thread (ferry-edge's threads_per_worker = 1). cpu.load_k: {load_how}. \
         cpu.throttle_c: not measured (a firmware limit), given with --throttle-c.",
        argv.join(" "),
        env!("CARGO_PKG_VERSION"),
        niceness(),
        cpu_name(),
        utc_date(),
        args.iterations,
        args.warmup,
    )
}

/// Encoded request and answer sizes of `model` over the bundled images with extension `ext`:
/// (mean up, mean down, how they were obtained).
fn sizes(store: &ModelStore, model: &str, sent: Sent, ext: &str) -> Result<(u32, u32, String)> {
    let dir = store.dir().join("images");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: the bundled images size the requests", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no .{ext} images to size {model}'s requests with", dir.display());
    }
    let engine = TractEngine::new(Threads(1));
    let fp32 = store.load(&engine, model, Precision::Fp32)?;
    let shape: Vec<u32> = fp32.manifest().input.shape.iter().map(|&d| u32::try_from(d).unwrap_or(u32::MAX)).collect();
    let (mut ups, mut downs) = (Vec::new(), Vec::new());
    for file in &files {
        let input = match sent {
            Sent::Jpeg => Input::Image { format: ImageFormat::Jpeg, bytes: std::fs::read(file)? },
            Sent::Tensor => {
                let image = preprocess::load_image(file)?;
                let values = preprocess::image_to_tensor(fp32.manifest(), &image);
                Input::Tensor(Tensor::from_f32(Shape::new(&shape)?, &values)?)
            }
        };
        ups.push(encoded_request_len(&request(model, input)?.as_ref()));
        let top = fp32.infer_image(&preprocess::load_image(file)?, TOP_K)?.top;
        downs.push(encoded_response_len(&answer(top).as_ref()));
    }
    let mean = |v: &[usize]| (v.iter().sum::<usize>() as f64 / v.len() as f64).round() as u32;
    let span = |v: &[usize]| format!("{}–{}", v.iter().min().unwrap_or(&0), v.iter().max().unwrap_or(&0));
    let how = format!(
        "computed by ferry bench local with ferry-protocol's encoder: the mean over the {n} bundled models/images/*.{ext} \
         of one request (device id `{DEVICE_ID}`, {what}; {} B) and of one answer (status ok, the top-{TOP_K} classes \
         this model's FP32 gives each image, as ferry-edge sends them; {} B)",
        span(&ups),
        span(&downs),
        n = files.len(),
        what = match sent {
            Sent::Jpeg => "the JPEG file's bytes as the local API and `ferry offload` forward them",
            Sent::Tensor => "the image as the model's f32 input tensor",
        },
    );
    Ok((mean(&ups), mean(&downs), how))
}

fn request(model: &str, input: Input) -> Result<Request> {
    Ok(Request {
        request_id: 1,
        device_id: DeviceId::new(DEVICE_ID)?,
        model: ModelName::new(model)?,
        precision: ferry_protocol::Precision::Any,
        deadline_ms: Some(150),
        sent_at_us: 0,
        input,
    })
}

fn answer(top: Vec<ferry_runtime::Class>) -> Response {
    let top_k = top
        .into_iter()
        .map(|c| TopK { class: u32::try_from(c.index).unwrap_or(u32::MAX), score: c.score, label: c.label })
        .collect();
    Response { request_id: 1, status: Status::Ok, detail: String::new(), timings: EdgeTimings::default(), top_k, output: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(model: &str, precision: Precision, threads: u16, mean_ms: f64) -> VariantFigures {
        VariantFigures {
            model: model.into(),
            precision,
            mean_ms,
            sigma_ms: mean_ms / 10.0,
            far_out: 0,
            p50_ms: mean_ms,
            p95_ms: mean_ms,
            load_ms: 1.0,
            peak_rss_mib: 1.0,
            iterations: 50,
            threads,
        }
    }

    #[test]
    fn the_figures_of_a_run_make_a_profile_ferry_sim_reads_back() {
        let mut figures = Vec::new();
        for (model, base) in [("efficientnet-lite0", 52.045_23), ("digits", 0.065_81)] {
            for (precision, times) in [(Precision::Fp32, 1.0), (Precision::Int8, 16.8)] {
                for threads in [1, 2] {
                    figures.push(figure(model, precision, threads, base * times / f64::from(threads)));
                }
            }
        }
        let model = |name: &str| -> ModelProfile {
            let fp32 = variant(&figures, name, Precision::Fp32).unwrap();
            let int8 = variant(&figures, name, Precision::Int8).unwrap();
            ModelProfile { up_bytes: 319, down_bytes: 82, bytes: "test".into(), edge: fp32.threads_1, fp32, int8, forms: Default::default() }
        };
        let profile = BoardProfile {
            board: "test".into(),
            source: "unit test".into(),
            cpu: CpuProfile { load_k: 2.3396, throttle_c: 85.0 },
            models: Models { efficientnet_lite0: model("efficientnet-lite0"), digits: model("digits") },
        };
        assert_eq!(profile.models.efficientnet_lite0.fp32.threads_2.mean_ms, 26.0226);
        let text = profile.to_toml().unwrap();
        assert_eq!(BoardProfile::from_toml(&text).unwrap(), profile, "{text}");
        // A run without one of the variants cannot make a profile.
        figures.retain(|f| !(f.model == "digits" && f.threads == 2));
        assert!(variant(&figures, "digits", Precision::Int8).is_err());
    }

    #[test]
    fn round4_keeps_a_tenth_of_a_microsecond() {
        assert_eq!(round4(75.123_456), 75.1235);
        assert_eq!(round4(0.081_04), 0.081);
    }
}
