//! The models an edge serves, loaded once at start, and which variant answers a request.

use std::collections::HashMap;
use std::sync::Arc;

use ferry_protocol as protocol;
use ferry_runtime::split::{Splitter, Tail};
use ferry_runtime::{LocalModel, ModelStore, Precision, RuntimeError, Threads, TractEngine};

use crate::config::{EdgeConfig, ModelConfig};

/// One loaded variant and how many classes to return from it.
#[derive(Debug)]
pub struct Served {
    /// The variant.
    pub model: LocalModel,
    /// Classes per answer.
    pub top_k: usize,
    /// The tails of the model's cuts, for split requests (FP32 variant only; empty when the
    /// model has none or `splits = false`).
    pub tails: Vec<Tail>,
}


/// Every loaded variant, by model name; each name's first variant is its default.
#[derive(Debug, Default)]
pub struct Catalogue {
    models: HashMap<String, Vec<Arc<Served>>>,
}

impl Catalogue {
    /// Loads what `config` lists (or every model in the store, FP32).
    pub fn load(config: &EdgeConfig) -> Result<Catalogue, RuntimeError> {
        let store = match &config.models_dir {
            Some(dir) => ModelStore::new(dir),
            None => ModelStore::discover(),
        };
        let listed: Vec<(String, ModelConfig)> = if config.models.is_empty() {
            store
                .names()
                .into_iter()
                .map(|n| (n, ModelConfig::default()))
                .collect()
        } else {
            config
                .models
                .iter()
                .map(|(n, m)| (n.clone(), m.clone()))
                .collect()
        };
        let engine = TractEngine::new(Threads(config.threads_per_worker));
        let mut models = HashMap::new();
        for (name, model_config) in listed {
            let mut variants = Vec::new();
            for &precision in &model_config.precisions {
                let model = store.load(&engine, &name, precision)?;
                tracing::info!(
                    model = %name, %precision, load_ms = model.load_time().as_millis() as u64,
                    "model loaded"
                );
                let top_k = usize::from(model_config.top_k.unwrap_or(config.top_k));
                let tails = if precision == Precision::Fp32 && model_config.splits {
                    load_tails(&engine, &model, config)?
                } else {
                    Vec::new()
                };
                variants.push(Arc::new(Served { model, top_k, tails }));
            }
            models.insert(name, variants);
        }
        Ok(Catalogue { models })
    }

    /// The variant that serves split requests for `name`: its FP32 one, if it has tails.
    pub fn find_split(&self, name: &str) -> Option<Arc<Served>> {
        self.models.get(name)?.iter().find(|s| !s.tails.is_empty()).cloned()
    }

    /// The variant that serves `name` at the `wanted` precision, if any.
    pub fn find(&self, name: &str, wanted: protocol::Precision) -> Option<Arc<Served>> {
        let variants = self.models.get(name)?;
        let precision = match wanted {
            protocol::Precision::Fp32 => Precision::Fp32,
            protocol::Precision::Int8 => Precision::Int8,
            protocol::Precision::Any => return variants.first().cloned(),
            _ => return None,
        };
        variants
            .iter()
            .find(|s| s.model.precision() == precision)
            .cloned()
    }

    /// `name@precision` of every loaded variant, for logs.
    pub fn describe(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .models
            .iter()
            .flat_map(|(n, vs)| vs.iter().map(move |s| format!("{n}@{}", s.model.precision())))
            .collect();
        all.sort();
        all
    }

    /// True when nothing is loaded.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// The tails of every candidate cut of `model` (none, with a log line, if it cannot be cut).
fn load_tails(engine: &TractEngine, model: &LocalModel, config: &EdgeConfig) -> Result<Vec<Tail>, RuntimeError> {
    let name = &model.manifest().name;
    let splitter = match Splitter::open(Arc::new(model.manifest().clone())) {
        Ok(s) => s,
        Err(RuntimeError::Split { message }) => {
            tracing::info!(model = %name, "no split requests: {message}");
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let cache = config.cache_dir.clone().unwrap_or_else(ferry_runtime::split::cache_dir);
    let started = std::time::Instant::now();
    let tails = splitter.cuts().iter().map(|cut| splitter.load_tail(engine, cut, &cache)).collect::<Result<Vec<_>, _>>()?;
    tracing::info!(
        model = %name,
        cuts = ?splitter.cuts().iter().map(|c| c.name()).collect::<Vec<_>>(),
        load_ms = started.elapsed().as_millis() as u64,
        "split tails loaded"
    );
    Ok(tails)
}
