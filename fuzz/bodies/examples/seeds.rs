//! Writes the seed inputs each fuzz target starts from into `fuzz/corpus/<target>/`:
//! real encodings made with Ferry's own encoders (envelopes, images, spool files) and the
//! shipped configs. `cargo run --release -p ferry-fuzz-bodies --example seeds`; the fuzzer
//! then grows each corpus and `cargo fuzz cmin` minimizes it (fuzz/README.md).

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use ferry_agent::telemetry::spool::{FsyncPolicy, Spool, SpoolOptions};
use ferry_protocol::{
    encode_error_response, encode_request, encode_response, DeviceId, EdgeTimings, ImageFormat,
    Input, ModelName, Precision, Request, Response, Shape, Status, Tensor, TopK,
};
use image::{DynamicImage, ImageFormat as Format};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = root.join("..");
    let corpus = root.join("corpus");
    envelope(&corpus.join("envelope"))?;
    images(&corpus.join("image"), &repo)?;
    configs(&corpus.join("config"), &repo)?;
    spool(&corpus.join("spool"))?;
    Ok(())
}

fn put(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(format!("seed-{name}")), bytes)?;
    Ok(())
}

fn envelope(dir: &Path) -> Result<()> {
    let request = |input: Input, deadline_ms| Request {
        request_id: 42,
        device_id: DeviceId::new("dev-1").expect("name"),
        model: ModelName::new("digits").expect("name"),
        precision: Precision::Fp32,
        deadline_ms,
        sent_at_us: 1_700_000_000_000_000,
        input,
    };
    let png = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/images/digit-3.png"),
    )?;
    let tensor = Tensor::from_f32(Shape::new(&[1, 1, 8, 8])?, &[0.5; 64])?;
    let mut out = Vec::new();
    for (name, req) in [
        (
            "request-image",
            request(
                Input::Image {
                    format: ImageFormat::Png,
                    bytes: png,
                },
                Some(100),
            ),
        ),
        (
            "request-tensor",
            request(Input::Tensor(tensor.clone()), None),
        ),
    ] {
        encode_request(&req.as_ref(), &mut out)?;
        put(dir, name, &out)?;
    }
    let response = Response {
        request_id: 42,
        status: Status::Ok,
        detail: String::new(),
        timings: EdgeTimings {
            queue_wait_us: 120,
            compute_us: 900,
            batch_size: 2,
            queue_depth: 3,
        },
        top_k: vec![
            TopK {
                class: 3,
                score: 0.9,
                label: "3".into(),
            },
            TopK {
                class: 8,
                score: 0.05,
                label: "8".into(),
            },
        ],
        output: Some(Tensor::from_f32(Shape::new(&[1, 10])?, &[0.1; 10])?),
    };
    encode_response(&response.as_ref(), &mut out)?;
    put(dir, "response-ok", &out)?;
    encode_error_response(
        7,
        Status::Busy,
        "queue full",
        EdgeTimings::default(),
        &mut out,
    );
    put(dir, "response-busy", &out)?;
    put(dir, "topic-request", b"ferry/dev-1/req/digits")?;
    put(dir, "topic-response", b"ferry/dev-1/resp")?;
    Ok(())
}

fn encoded(image: &DynamicImage, format: Format) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format)?;
    Ok(out.into_inner())
}

fn images(dir: &Path, repo: &Path) -> Result<()> {
    let shapes: [(&str, DynamicImage); 8] = [
        ("gray-8x8", DynamicImage::new_luma8(8, 8)),
        ("rgb-3x3", DynamicImage::new_rgb8(3, 3)),
        ("rgba16-16x16", DynamicImage::new_rgba16(16, 16)),
        ("la16-5x40", DynamicImage::new_luma_a16(5, 40)),
        // The shape that once asked for 2,097,152×256 pixels.
        ("rgb-8192x1", DynamicImage::new_rgb8(8192, 1)),
        ("gray-1x8192", DynamicImage::new_luma8(1, 8192)),
        ("rgb-300x20", DynamicImage::new_rgb8(300, 20)),
        ("rgb-4000x100", DynamicImage::new_rgb8(4000, 100)),
    ];
    for (name, image) in &shapes {
        put(dir, &format!("{name}.png"), &encoded(image, Format::Png)?)?;
    }
    put(
        dir,
        "rgb-16x16.jpg",
        &encoded(&DynamicImage::new_rgb8(16, 16), Format::Jpeg)?,
    )?;
    put(
        dir,
        "gray-9x7.jpg",
        &encoded(&DynamicImage::new_luma8(9, 7), Format::Jpeg)?,
    )?;
    for name in ["digit-3.png", "digit-7.png", "horse.jpg"] {
        put(dir, name, &fs::read(repo.join("models/images").join(name))?)?;
    }
    Ok(())
}

fn configs(dir: &Path, repo: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo.join("firmware-configs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.push(repo.join("models/digits/manifest.toml"));
    files.push(repo.join("models/efficientnet-lite0/manifest.toml"));
    for file in files {
        let text = fs::read_to_string(&file)?;
        let name = format!(
            "{}-{}",
            file.parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or("x"),
            file.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        );
        put(dir, &name, text.as_bytes())?;
    }
    // A manifest the fuzzer's folder name accepts (`models/fuzz/manifest.toml`).
    let digits = fs::read_to_string(repo.join("models/digits/manifest.toml"))?;
    put(
        dir,
        "fuzz-manifest.toml",
        digits
            .replace("name = \"digits\"", "name = \"fuzz\"")
            .as_bytes(),
    )?;
    Ok(())
}

/// Makes a real spool, then packs its files in the body's input layout (see the spool body).
fn spool(dir: &Path) -> Result<()> {
    let scratch = std::env::temp_dir().join(format!("ferry-fuzz-seeds-{}", std::process::id()));
    for (name, records, ack, segment_bytes) in [
        ("one-segment", 5u64, None, 4096u16),
        ("rotated-acked", 12, Some(4u64), 200),
    ] {
        let _ = fs::remove_dir_all(&scratch);
        let options = SpoolOptions {
            dir: scratch.clone(),
            max_bytes: 4 * (33 + u64::from(segment_bytes)),
            segment_bytes: 33 + u64::from(segment_bytes),
            fsync: FsyncPolicy::Never,
        };
        let mut spool = Spool::open(options)?;
        for i in 0..records {
            spool.append(format!("{{\"seq\":{i},\"temp_c\":41.5}}").as_bytes())?;
        }
        if let Some(seq) = ack {
            spool.ack(seq)?;
        }
        drop(spool);
        let mut segments: Vec<(u64, Vec<u8>)> = Vec::new();
        for entry in fs::read_dir(&scratch)? {
            let path = entry?.path();
            let stem = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".seg"));
            if let Some(first) = stem.and_then(|s| s.parse::<u64>().ok()) {
                segments.push((first, fs::read(&path)?));
            }
        }
        segments.sort();
        segments.truncate(3);
        let ack_bytes = fs::read(scratch.join("ack")).ok().filter(|b| b.len() == 20);
        let mut flags = 1u8 | ((segments.len() as u8) << 5);
        if ack_bytes.is_some() {
            flags |= 2;
        }
        let mut input = vec![flags];
        input.extend_from_slice(&segment_bytes.to_le_bytes());
        input.push(2);
        if let Some(ack) = &ack_bytes {
            input.extend_from_slice(&ack[..16]);
        }
        for (i, (first, bytes)) in segments.iter().enumerate() {
            input.extend_from_slice(&first.to_le_bytes());
            if i + 1 < segments.len() {
                input.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            }
            input.extend_from_slice(bytes);
        }
        put(dir, name, &input)?;
    }
    let _ = fs::remove_dir_all(&scratch);
    Ok(())
}
