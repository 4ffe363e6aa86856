//! The configured targets, resolved once at start-up into small indices the hot path uses.

use ferry_hal::Precision;

use super::config::{Config, TargetConfig, MAX_FORMS, MAX_MODELS, MAX_TARGETS};
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
        /// Per model, the shaped forms it may be sent: bit `k` set for form `k + 1` (see
        /// [`Targets::form`]).
        forms: [u8; MAX_MODELS],
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

    /// Whether it may be sent `model`'s input in `form` (the original always).
    pub fn accepts(&self, model: ModelId, form: FormId) -> bool {
        match self.kind {
            TargetKind::Local { .. } => form == FormId::ORIGINAL,
            TargetKind::Edge { forms, .. } => {
                form == FormId::ORIGINAL
                    || (form.0 >= 1 && forms.get(model.index()).is_some_and(|m| m & (1 << (form.0 - 1)) != 0))
            }
        }
    }

    /// Whether it can run `model`.
    pub fn serves(&self, model: ModelId) -> bool {
        match self.kind {
            TargetKind::Local { model: m, .. } => m == model,
            TargetKind::Edge { serves, .. } => serves & (1 << model.0) != 0,
        }
    }
}

/// Index of a form of a model's input: 0 is the original, `k ≥ 1` the model's `k`-th
/// `[[forms]]` entry in config order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FormId(pub u8);

impl FormId {
    /// The input as the application gave it.
    pub const ORIGINAL: FormId = FormId(0);
}

/// A shaped form of one model's input, resolved from `[[forms]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FormSpec {
    /// Its name.
    pub name: String,
    /// Bytes of one request in it before any is measured.
    pub prior_up_bytes: u32,
    /// Time to make it before it is measured, µs.
    pub prior_encode_us: f64,
    /// The edge's compute for it as a share of the whole model's ([`crate::config::FormConfig::edge_share`]).
    pub edge_share: f64,
}

/// All targets and the model names (names are only read off the hot path).
#[derive(Debug, Clone)]
pub struct Targets {
    list: heapless::Vec<Target, MAX_TARGETS>,
    names: Vec<String>,
    models: Vec<String>,
    /// Per model (by id), its shaped forms in order (form `k` is entry `k - 1`).
    forms: Vec<Vec<FormSpec>>,
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
        // Per model, its shaped forms in config order (form `k` is entry `k - 1`).
        let forms: Vec<Vec<FormSpec>> = models
            .iter()
            .map(|m| {
                config
                    .forms
                    .iter()
                    .filter(|f| &f.model == m)
                    .take(MAX_FORMS)
                    .map(|f| FormSpec { name: f.name.clone(), prior_up_bytes: f.up_bytes, prior_encode_us: f.encode_ms * 1e3, edge_share: f.edge_share })
                    .collect()
            })
            .collect();
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
                    let mut masks = [0u8; MAX_MODELS];
                    for (mask, of_model) in masks.iter_mut().zip(&forms) {
                        for (k, f) in of_model.iter().enumerate() {
                            if e.forms.contains(&f.name) {
                                *mask |= 1 << k;
                            }
                        }
                    }
                    TargetKind::Edge {
                        serves,
                        timeout_us: u64::from(e.timeout_ms) * 1000,
                        max_inflight: e.max_inflight.max(1),
                        compute_prior_us: e.compute_prior_ms.unwrap_or(20.0) * 1e3,
                        forms: masks,
                    }
                }
            };
            let target = Target { id: TargetId(i as u8), priority: t.priority(), kind };
            list.push(target)
                .map_err(|_| DecideError::Invalid { key: "targets", why: "at most 8 targets" })?;
            names.push(t.name().to_owned());
        }
        Ok(Targets { list, names, models, forms })
    }

    /// The shaped forms of a model, in order (form `k` is element `k - 1`).
    pub fn forms_of(&self, model: ModelId) -> &[FormSpec] {
        self.forms.get(model.index()).map_or(&[], Vec::as_slice)
    }

    /// One shaped form (`None` for the original or an unknown one).
    pub fn form(&self, model: ModelId, form: FormId) -> Option<&FormSpec> {
        self.forms_of(model).get(usize::from(form.0).checked_sub(1)?)
    }

    /// A form's name (`original` for form 0).
    pub fn form_name(&self, model: ModelId, form: FormId) -> &str {
        if form == FormId::ORIGINAL {
            return "original";
        }
        self.form(model, form).map_or("?", |f| f.name.as_str())
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
