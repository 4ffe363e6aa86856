//! `ferry offload`: sends one image to an edge server over MQTT/TLS and prints its answer
//! and timings. The offload client itself lives in `ferry-transport` (`mqtt::MqttOffloader`); this is its CLI face.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use ferry_protocol::{DeviceId, ImageFormat, Input, ModelName, Precision, Request};
use ferry_transport::mqtt::{MqttConfig, MqttOffloader, TlsVersion};

/// `ferry offload`.
#[derive(Debug, Args)]
pub struct OffloadArgs {
    /// The broker: mqtts://host[:8883] (mqtt:// needs --insecure).
    #[arg(long)]
    pub broker: Option<String>,
    /// An MQTT config file (TOML with the keys of ferry-transport's MqttConfig); the flags
    /// below override its values.
    #[arg(long, value_name = "FILE")]
    pub mqtt_config: Option<PathBuf>,
    /// The CA certificate (PEM) the broker's certificate must chain to.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// This device's certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// This device's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// This device's id, the CN of its certificate (default: the certificate's file name
    /// without extension).
    #[arg(long)]
    pub device: Option<String>,
    /// The model to run on the edge.
    #[arg(long, default_value = "digits")]
    pub model: String,
    /// The precision to ask for: any, fp32 or int8.
    #[arg(long, default_value = "any", value_parser = parse_precision)]
    pub precision: Precision,
    /// How long to wait for the connection and for the answer, ms.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
    /// Offer TLS 1.2 as well as 1.3.
    #[arg(long)]
    pub tls12: bool,
    /// Allow mqtt:// (plain TCP, no authentication).
    #[arg(long)]
    pub insecure: bool,
    /// The image (PNG or JPEG).
    pub image: PathBuf,
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    match s.to_ascii_lowercase().as_str() {
        "any" => Ok(Precision::Any),
        "fp32" => Ok(Precision::Fp32),
        "int8" => Ok(Precision::Int8),
        _ => Err("expected any, fp32 or int8".into()),
    }
}

/// Runs `ferry offload`.
pub fn run(args: &OffloadArgs) -> Result<()> {
    let config = mqtt_config(args)?;
    let device = match (&args.device, &config.cert) {
        (Some(d), _) => d.clone(),
        (None, Some(cert)) => cert
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_owned)
            .context("cannot take a device id from the certificate's file name: use --device")?,
        (None, None) => bail!("--device is needed without a certificate"),
    };
    let device = DeviceId::new(&device).with_context(|| format!("device id `{device}`"))?;
    let model = ModelName::new(&args.model).with_context(|| format!("model name `{}`", args.model))?;
    let bytes = std::fs::read(&args.image).with_context(|| format!("{}", args.image.display()))?;
    let format = match args.image.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase) {
        Some(e) if e == "png" => ImageFormat::Png,
        Some(e) if e == "jpg" || e == "jpeg" => ImageFormat::Jpeg,
        _ => ImageFormat::Unspecified,
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let offloader = MqttOffloader::connect(&config, device, timeout)
            .await
            .with_context(|| format!("connecting to {}", config.broker))?;
        let request = Request {
            request_id: offloader.next_request_id(),
            device_id: device,
            model,
            precision: args.precision,
            deadline_ms: u32::try_from(args.timeout_ms).ok(),
            sent_at_us: ferry_protocol::wall_clock_us(),
            input: Input::Image { format, bytes },
        };
        let start = Instant::now();
        let result = offloader.offload(request, timeout).await;
        let round_trip = start.elapsed();
        offloader.shutdown().await;
        let response = result.context("offload failed")?;
        println!(
            "{model} via {} as {device}: status {}{}",
            config.broker,
            response.status,
            if response.detail.is_empty() { String::new() } else { format!(" ({})", response.detail) }
        );
        for (i, c) in response.top_k.iter().enumerate() {
            println!("  #{} class {} {:>8.4}  {}", i + 1, c.class, c.score, c.label);
        }
        let t = response.timings;
        println!(
            "round trip {:.2} ms; edge: queue wait {:.2} ms, compute {:.2} ms, batch {}, queue depth {}",
            round_trip.as_secs_f64() * 1e3,
            f64::from(t.queue_wait_us) / 1e3,
            f64::from(t.compute_us) / 1e3,
            t.batch_size,
            t.queue_depth
        );
        if response.status != ferry_protocol::Status::Ok {
            bail!("the edge answered {}", response.status);
        }
        Ok(())
    })
}

fn mqtt_config(args: &OffloadArgs) -> Result<MqttConfig> {
    let mut config = match &args.mqtt_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
            toml::from_str::<MqttConfig>(&text).with_context(|| format!("{}", path.display()))?
        }
        None => MqttConfig::new(args.broker.clone().context("--broker or --mqtt-config is needed")?),
    };
    if let Some(b) = &args.broker {
        config.broker = b.clone();
    }
    for (slot, flag) in [(&mut config.ca, &args.ca), (&mut config.cert, &args.cert), (&mut config.key, &args.key)] {
        if let Some(p) = flag {
            *slot = Some(p.clone());
        }
    }
    if args.tls12 {
        config.min_tls_version = TlsVersion::Tls12;
    }
    if args.insecure {
        config.insecure = true;
    }
    Ok(config)
}
