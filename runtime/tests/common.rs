//! Helpers shared by the runtime's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use ferry_runtime::{LocalModel, ModelStore, Precision, Threads, TractEngine};

pub fn models_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models"))
}

pub fn store() -> ModelStore {
    ModelStore::new(models_dir())
}

pub fn load(name: &str, precision: Precision) -> LocalModel {
    let store = store();
    let manifest = Arc::new(store.manifest(name).expect("shipped manifest"));
    LocalModel::load(&TractEngine::new(Threads(1)), manifest, precision).expect("shipped model loads")
}
