//! The configured targets, resolved once at start-up into small indices the hot path uses.

use ferry_hal::Precision;

use super::config::{Config, TargetConfig, MAX_MODELS, MAX_TARGETS};
use super::error::DecideError;

/// Index of a target in the config's `[[targets]]` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(pub u8);

impl TargetId {
    /// As an array index.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Index of a model, in order of first mention in `[[targets]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(pub u8);

impl ModelId {
    /// As an array index.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Local or edge, with what the decision needs of each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TargetKind {
    /// A local variant of one model.
    Local {
        /// The model it runs.
        model: ModelId,
        /// Its precision.
        precision: Precision,
        /// Energy per inference, mJ (0 if not configured).
        mj_per_inference: f64,
        /// Compute time before the first measurement, µs.
        prior_us: f64,
    },
    /// An edge endpoint.
    Edge {
        /// Bit i set: serves model i.
        serves: u32,
        /// Hard timeout, µs.
        timeout_us: u64,
        /// In-flight limit.
        max_inflight: u16,
        /// Edge compute time before the first response, µs.
        compute_prior_us: f64,
    },
}

/// One resolved target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Its id.
    pub id: TargetId,
    /// Lower wins ties.
    pub priority: u8,
    /// What it is.
    pub kind: TargetKind,
}

impl Target {
    /// Whether it is a local variant.
    pub fn is_local(&self) -> bool {
        matches!(self.kind, TargetKind::Local { .. })
    }

    /// Whether it can run `model`.
    pub fn serves(&self, model: ModelId) -> bool {
        match self.kind {
            TargetKind::Local { model: m, .. } => m == model,
            TargetKind::Edge { serves, .. } => serves & (1 << model.0) != 0,
        }
    }
}

/// All targets and the model names (names are only read off the hot path).
#[derive(Debug, Clone)]
pub struct Targets {
    list: heapless::Vec<Target, MAX_TARGETS>,
    names: Vec<String>,
    models: Vec<String>,
}

impl Targets {
    /// Resolves the config's targets. Fails on too many models.
    pub fn from_config(config: &Config) -> Result<Targets, DecideError> {
        let mut models: Vec<String> = Vec::new();
        let model_id = |name: &str, models: &mut Vec<String>| -> Result<ModelId, DecideError> {
            if let Some(i) = models.iter().position(|m| m == name) {
                return Ok(ModelId(i as u8));
            }
            if models.len() >= MAX_MODELS {
                return Err(DecideError::Invalid { key: "targets", why: "at most 8 distinct models" });
            }
            models.push(name.to_owned());
            Ok(ModelId((models.len() - 1) as u8))
        };
        // Local targets name the models; edges refer to them.
        for t in &config.targets {
            if let TargetConfig::Local(l) = t {
                model_id(&l.model, &mut models)?;
            }
        }
        for t in &config.targets {
            if let TargetConfig::Edge(e) = t {
                for m in &e.models {
                    model_id(m, &mut models)?;
                }
            }
        }
        let mut list = heapless::Vec::new();
        let mut names = Vec::new();
        for (i, t) in config.targets.iter().enumerate() {
            let kind = match t {
                TargetConfig::Local(l) => {
                    let model = model_id(&l.model, &mut models)?;
                    let mj = config
                        .energy
                        .inference
                        .iter()
                        .find(|e| e.model == l.model && e.precision == l.precision)
                        .map_or(0.0, |e| e.mj_per_inference);
                    TargetKind::Local {
                        model,
                        precision: l.precision,
                        mj_per_inference: mj,
                        prior_us: l.prior_ms.unwrap_or(50.0) * 1e3,
                    }
                }
                TargetConfig::Edge(e) => {
                    let mut serves = 0u32;
                    if e.models.is_empty() {
                        serves = u32::MAX;
                    }
                    for m in &e.models {
                        serves |= 1 << model_id(m, &mut models)?.0;
                    }
                    TargetKind::Edge {
                        serves,
                        timeout_us: u64::from(e.timeout_ms) * 1000,
                        max_inflight: e.max_inflight.max(1),
                        compute_prior_us: e.compute_prior_ms.unwrap_or(20.0) * 1e3,
                    }
                }
            };
            let target = Target { id: TargetId(i as u8), priority: t.priority(), kind };
            list.push(target)
                .map_err(|_| DecideError::Invalid { key: "targets", why: "at most 8 targets" })?;
            names.push(t.name().to_owned());
        }
        Ok(Targets { list, names, models })
    }

    /// All targets in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Target> {
        self.list.iter()
    }

    /// One target.
    pub fn get(&self, id: TargetId) -> Option<&Target> {
        self.list.get(id.index())
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none (never, after validation).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// A target's name.
    pub fn name(&self, id: TargetId) -> &str {
        self.names.get(id.index()).map_or("?", String::as_str)
    }

    /// A model's id by name.
    pub fn model_id(&self, name: &str) -> Option<ModelId> {
        self.models.iter().position(|m| m == name).map(|i| ModelId(i as u8))
    }

    /// A model's name.
    pub fn model_name(&self, id: ModelId) -> &str {
        self.models.get(id.index()).map_or("?", String::as_str)
    }

    /// The number of models.
    pub fn model_count(&self) -> usize {
        self.models.len()
    }
}
