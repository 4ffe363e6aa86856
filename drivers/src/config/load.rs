//! Reading a board config: parse, then check every section and every entry on its own so that
//! one mistake does not hide the next.

use std::collections::HashSet;
use std::path::Path;

use toml::{Table, Value};

use super::*;
use crate::driver::ValidateCtx;
use crate::registry::Registry;

const SECTIONS: [&str; 7] = ["board", "buses", "sensors", "thermal", "models", "energy", "targets"];
const SENSOR_KEYS: [&str; 3] = ["name", "driver", "interval_ms"];

impl BoardConfig {
    /// Reads `path` with the built-in drivers. Returns every error found, not just the first.
    pub fn load(path: impl AsRef<Path>) -> Result<BoardConfig, ConfigErrors> {
        Self::load_with(path, &Registry::builtin())
    }

    /// Reads `path`, validating sensors against `registry`.
    pub fn load_with(path: impl AsRef<Path>, registry: &Registry) -> Result<BoardConfig, ConfigErrors> {
        let path = path.as_ref();
        let mut errs = Errors::new(path);
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path, registry),
            Err(e) => {
                errs.push("", "a readable board config file", Some(e.to_string()));
                Err(ConfigErrors(errs.list))
            }
        }
    }

    /// Parses `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path, registry: &Registry) -> Result<BoardConfig, ConfigErrors> {
        let mut errs = Errors::new(path);
        let mut doc: Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let msg = e.to_string().replace('\n', " ");
                errs.push("", "valid TOML", Some(msg.split_whitespace().collect::<Vec<_>>().join(" ")));
                return Err(ConfigErrors(errs.list));
            }
        };
        for key in doc.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                errs.push(key.clone(), format!("a known section: {}", SECTIONS.join(", ")), Some("an unknown key".into()));
            }
        }
        let mut take = |k: &str| doc.remove(k);
        let board = required(&mut errs, "board", take("board")).and_then(|v| errs.parse::<BoardSection>("board", v));
        let buses: Vec<BusConfig> = array(&mut errs, "buses", take("buses"));
        let sensor_values = array_values(&mut errs, "sensors", take("sensors"));
        let thermal = required(&mut errs, "thermal", take("thermal")).and_then(|v| errs.parse::<ThermalConfig>("thermal", v));
        let models: Vec<ModelConfig> = array(&mut errs, "models", take("models"));
        // Optional: without it the energy figures are all 0 (not modelled), as in the decision.
        let energy = match take("energy") {
            Some(v) => errs.parse::<EnergyConfig>("energy", v),
            None => Some(EnergyConfig::default()),
        };
        let targets: Vec<TargetConfig> = array(&mut errs, "targets", take("targets"));

        if let Some(b) = &board {
            validate_board(b, &mut errs);
        }
        unique(&mut errs, "buses", buses.iter().map(|b| b.name.as_str()));
        for (i, b) in buses.iter().enumerate() {
            if b.device.as_os_str().is_empty() {
                errs.push(format!("buses[{i}].device"), "a device path such as /dev/i2c-1", Some("an empty path".into()));
            }
            if let Some(hz) = b.max_speed_hz {
                if b.kind != BusKind::Spi {
                    errs.push(format!("buses[{i}].max_speed_hz"), "no clock on a non-SPI bus", Some(hz.to_string()));
                }
                errs.range(format!("buses[{i}].max_speed_hz"), hz, 10_000, 50_000_000, "an SPI clock in Hz");
            }
        }
        let vctx = ValidateCtx { buses: &buses };
        let mut sensors = Vec::new();
        for (index, value) in sensor_values.into_iter().enumerate() {
            if let Some(s) = sensor(&mut errs, registry, &vctx, index, value) {
                sensors.push(s);
            }
        }
        unique(&mut errs, "sensors", sensors.iter().map(|s| s.name.as_str()));
        if let Some(t) = &thermal {
            errs.range("thermal.throttle_point_c", t.throttle_point_c, 40.0, 125.0, "a temperature in °C");
            errs.range("thermal.set_point_c", t.set_point_c, 30.0, 125.0, "a temperature in °C");
            if t.set_point_c >= t.throttle_point_c {
                errs.push(
                    "thermal.set_point_c",
                    format!("a set point below the throttle point ({} °C)", t.throttle_point_c),
                    Some(t.set_point_c.to_string()),
                );
            }
            if t.zone.trim().is_empty() {
                errs.push("thermal.zone", "a thermal zone type such as cpu-thermal", Some("an empty name".into()));
            }
        }
        validate_models(&models, &mut errs);
        if let Some(e) = &energy {
            validate_energy(e, &models, &mut errs);
        }
        validate_targets(&targets, &models, &mut errs);

        match (board, thermal, energy) {
            (Some(board), Some(thermal), Some(energy)) if errs.list.is_empty() => Ok(BoardConfig {
                path: path.to_path_buf(),
                board,
                buses,
                sensors,
                thermal,
                models,
                energy,
                targets,
            }),
            _ => Err(ConfigErrors(errs.list)),
        }
    }

    /// The model of `[[models]]` named `name`.
    pub fn model(&self, name: &str) -> Option<&ModelConfig> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Energy of one local inference of `model` at `precision`, mJ.
    pub fn mj_per_inference(&self, model: &str, precision: Precision) -> Option<f64> {
        self.energy.inference.iter().find(|e| e.model == model && e.precision == precision).map(|e| e.mj_per_inference)
    }
}

fn required(errs: &mut Errors, key: &str, v: Option<Value>) -> Option<Value> {
    if v.is_none() {
        errs.push(key, format!("a [{key}] section (it is required)"), Some("nothing".into()));
    }
    v
}

fn array_values(errs: &mut Errors, key: &str, v: Option<Value>) -> Vec<Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            errs.push(key, format!("an array of tables ([[{key}]])"), Some(other.type_str().into()));
            Vec::new()
        }
    }
}

fn array<T: serde::de::DeserializeOwned>(errs: &mut Errors, key: &str, v: Option<Value>) -> Vec<T> {
    array_values(errs, key, v)
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| errs.parse::<T>(&format!("{key}[{i}]"), v))
        .collect()
}

fn unique<'a>(errs: &mut Errors, key: &str, names: impl Iterator<Item = &'a str>) {
    let mut seen = HashSet::new();
    for (i, n) in names.enumerate() {
        if !seen.insert(n) {
            errs.push(format!("{key}[{i}].name"), format!("a name not used by another entry of [[{key}]]"), Some(format!("`{n}` again")));
        }
    }
}

fn sensor(errs: &mut Errors, registry: &Registry, vctx: &ValidateCtx, index: usize, value: Value) -> Option<SensorConfig> {
    let key = format!("sensors[{index}]");
    let Value::Table(mut table) = value else {
        errs.push(key, "a table", Some(value.type_str().into()));
        return None;
    };
    let mut common = Table::new();
    for k in SENSOR_KEYS {
        if let Some(v) = table.remove(k) {
            common.insert(k.into(), v);
        }
    }
    #[derive(Deserialize)]
    struct Common {
        name: String,
        driver: String,
        #[serde(default = "default_interval")]
        interval_ms: u64,
    }
    fn default_interval() -> u64 {
        1_000
    }
    let common: Common = errs.parse(&key, Value::Table(common))?;
    errs.range(format!("{key}.interval_ms"), common.interval_ms, 10, 3_600_000, "a read interval in ms");
    let Some(driver) = registry.get(&common.driver) else {
        errs.push(
            format!("{key}.driver"),
            format!("a registered driver: {}", registry.names().collect::<Vec<_>>().join(", ")),
            Some(format!("`{}`", common.driver)),
        );
        return None;
    };
    driver.validate(&table, &key, vctx, errs);
    Some(SensorConfig { name: common.name, driver: common.driver, interval_ms: common.interval_ms, params: table, index })
}

fn validate_board(b: &BoardSection, errs: &mut Errors) {
    if b.name.trim().is_empty() {
        errs.push("board.name", "a board type such as rpi4", Some("an empty name".into()));
    }
    for (i, c) in b.cpu.iter().enumerate() {
        errs.range(format!("board.cpu[{i}].count"), c.count, 1, 256, "a core count");
        errs.range(format!("board.cpu[{i}].max_mhz"), c.max_mhz, 100, 6000, "a clock in MHz");
        if c.min_mhz > c.max_mhz {
            errs.push(format!("board.cpu[{i}].min_mhz"), format!("at most max_mhz ({})", c.max_mhz), Some(c.min_mhz.to_string()));
        }
    }
    if let Some(m) = b.memory_mib {
        errs.range("board.memory_mib", m, 16, 1_048_576, "memory in MiB");
    }
    for (i, a) in b.accelerators.iter().enumerate() {
        if !["gpu", "npu", "dla", "tpu"].contains(&a.kind.as_str()) {
            errs.push(format!("board.accelerators[{i}].kind"), "one of gpu, npu, dla, tpu", Some(format!("`{}`", a.kind)));
        }
    }
}

fn validate_models(models: &[ModelConfig], errs: &mut Errors) {
    unique(errs, "models", models.iter().map(|m| m.name.as_str()));
    for (i, m) in models.iter().enumerate() {
        if m.precisions.is_empty() {
            errs.push(format!("models[{i}].precisions"), "at least one of fp32, int8", Some("an empty list".into()));
        }
    }
}

fn has(models: &[ModelConfig], model: &str, p: Option<Precision>) -> Result<(), String> {
    let Some(m) = models.iter().find(|m| m.name == model) else {
        return Err(format!(
            "a model of [[models]] ({})",
            models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    };
    match p {
        Some(p) if !m.precisions.contains(&p) => Err(format!(
            "a precision of model `{model}` ({})",
            m.precisions.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
        )),
        _ => Ok(()),
    }
}

fn validate_energy(e: &EnergyConfig, models: &[ModelConfig], errs: &mut Errors) {
    errs.range("energy.radio_nj_per_byte", e.radio_nj_per_byte, 0.0, 1e6, "nJ per byte");
    errs.range("energy.radio_tail_mj", e.radio_tail_mj, 0.0, 1e4, "mJ");
    errs.range("energy.idle_mw", e.idle_mw, 0.0, 1e5, "mW");
    for (i, x) in e.inference.iter().enumerate() {
        let k = format!("energy.inference[{i}]");
        if !(x.mj_per_inference > 0.0 && x.mj_per_inference <= 1e5) {
            errs.push(format!("{k}.mj_per_inference"), "mJ more than 0 and at most 100000", Some(x.mj_per_inference.to_string()));
        }
        if let Err(exp) = has(models, &x.model, None) {
            errs.push(format!("{k}.model"), exp, Some(format!("`{}`", x.model)));
        } else if let Err(exp) = has(models, &x.model, Some(x.precision)) {
            errs.push(format!("{k}.precision"), exp, Some(format!("`{}`", x.precision)));
        }
    }
}

fn validate_targets(targets: &[TargetConfig], models: &[ModelConfig], errs: &mut Errors) {
    unique(errs, "targets", targets.iter().map(|t| t.name()));
    for (i, t) in targets.iter().enumerate() {
        let k = format!("targets[{i}]");
        match t {
            TargetConfig::Local(l) => {
                errs.range(format!("{k}.priority"), l.priority, 0, 100, "a priority");
                if !(l.max_memory_ratio > 0.0 && l.max_memory_ratio <= 1.0) {
                    errs.push(format!("{k}.max_memory_ratio"), "a ratio more than 0 and at most 1", Some(l.max_memory_ratio.to_string()));
                }
                if let Err(exp) = has(models, &l.model, None) {
                    errs.push(format!("{k}.model"), exp, Some(format!("`{}`", l.model)));
                } else if let Err(exp) = has(models, &l.model, Some(l.precision)) {
                    errs.push(format!("{k}.precision"), exp, Some(format!("`{}`", l.precision)));
                }
            }
            TargetConfig::Edge(e) => {
                errs.range(format!("{k}.priority"), e.priority, 0, 100, "a priority");
                errs.range(format!("{k}.timeout_ms"), e.timeout_ms, 10, 600_000, "a timeout in ms");
                errs.range(format!("{k}.max_inflight"), e.max_inflight, 1, 1024, "a request count");
                // CoAP is refused until a CoAP transport exists: a target nothing can reach
                // would be a phantom edge with estimates of its own.
                let coap = ["coaps://", "coap://"].iter().any(|s| e.endpoint.starts_with(s));
                let scheme_ok = ["mqtts://", "mqtt://"].iter().any(|s| e.endpoint.starts_with(s))
                    && e.endpoint.split("://").nth(1).is_some_and(|h| !h.is_empty());
                if coap {
                    errs.push(format!("{k}.endpoint"), "an mqtts:// endpoint (CoAP is not implemented yet), e.g. mqtts://edge.local:8883", Some(format!("`{}`", e.endpoint)));
                } else if !scheme_ok {
                    errs.push(format!("{k}.endpoint"), "an endpoint such as mqtts://edge.local:8883", Some(format!("`{}`", e.endpoint)));
                }
                for (j, m) in e.models.iter().enumerate() {
                    if let Err(exp) = has(models, m, None) {
                        errs.push(format!("{k}.models[{j}]"), exp, Some(format!("`{m}`")));
                    }
                }
            }
        }
    }
}
