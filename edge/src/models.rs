//! The models an edge serves, loaded once at start, and which variant answers a request.

use std::collections::HashMap;
use std::sync::Arc;

use ferry_protocol as protocol;
use ferry_runtime::{LocalModel, ModelStore, Precision, RuntimeError, Threads, TractEngine};

use crate::config::{EdgeConfig, ModelConfig};

/// One loaded variant and how many classes to return from it.
#[derive(Debug)]
pub struct Served {
    /// The variant.
    pub model: LocalModel,
    /// Classes per answer.
    pub top_k: usize,
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
                variants.push(Arc::new(Served { model, top_k }));
            }
            models.insert(name, variants);
        }
        Ok(Catalogue { models })
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
