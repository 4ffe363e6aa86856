//! The model store: a folder with one sub-folder per model (`<dir>/<name>/manifest.toml`), and
//! where Ferry looks for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_hal::Precision;

use crate::engine::Engine;
use crate::error::RuntimeError;
use crate::manifest::Manifest;
use crate::model::LocalModel;

/// The environment variable that points Ferry at a model folder.
pub const MODELS_ENV: &str = "FERRY_MODELS";

/// A folder of models.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    /// The store at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The store Ferry uses when none is named: `$FERRY_MODELS`, else `./models` if it holds
    /// models, else the `models/` folder of the source tree this binary was built from, else
    /// `/usr/share/ferry/models`.
    pub fn discover() -> Self {
        if let Some(dir) = std::env::var_os(MODELS_ENV) {
            return Self::new(dir);
        }
        let candidates = [
            PathBuf::from("models"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"),
            PathBuf::from("/usr/share/ferry/models"),
        ];
        let found = candidates.iter().find(|d| d.join("digits/manifest.toml").is_file());
        Self::new(found.unwrap_or(&candidates[0]).clone())
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The names of the models in the store, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("manifest.toml").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Reads the manifest of the model `name`.
    pub fn manifest(&self, name: &str) -> Result<Manifest, RuntimeError> {
        let safe = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && !name.starts_with('.');
        let path = self.dir.join(name).join("manifest.toml");
        if !safe || !path.is_file() {
            return Err(RuntimeError::UnknownModel {
                name: name.to_string(),
                dir: self.dir.clone(),
                known: self.names().join(", "),
            });
        }
        Manifest::load(&path)
    }

    /// Loads the `precision` variant of the model `name` with `engine`.
    pub fn load(&self, engine: &dyn Engine, name: &str, precision: Precision) -> Result<LocalModel, RuntimeError> {
        let manifest = Arc::new(self.manifest(name)?);
        LocalModel::load(engine, manifest, precision)
    }
}
