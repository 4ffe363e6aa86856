//! Configuration errors: each names the file, the key and what was expected. They are typed and
//! distinct from run-time sensor faults, and collected — a config reports all its errors at once.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with a board config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// The key path, e.g. `sensors[2].address` (empty for the whole file).
    pub key: String,
    /// What was expected there.
    pub expected: String,
    /// What was found, when there was something.
    pub found: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        write!(f, "expected {}", self.expected)?;
        if let Some(found) = &self.found {
            write!(f, ", found {found}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one config, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when some error is about `key`.
    pub fn mentions(&self, key: &str) -> bool {
        self.0.iter().any(|e| e.key == key)
    }
}

impl fmt::Display for ConfigErrors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors for one file, with a key prefix for the part being read.
#[derive(Debug)]
pub struct Errors<'a> {
    file: &'a Path,
    /// The errors so far.
    pub list: Vec<ConfigError>,
}

impl<'a> Errors<'a> {
    /// A collector for `file`.
    pub fn new(file: &'a Path) -> Self {
        Errors { file, list: Vec::new() }
    }

    /// Records that `key` should have been `expected`.
    pub fn push(&mut self, key: impl Into<String>, expected: impl Into<String>, found: Option<String>) {
        self.list.push(ConfigError { file: self.file.to_path_buf(), key: key.into(), expected: expected.into(), found });
    }

    /// Records a serde error met while reading the value at `prefix`, turning serde's message
    /// ("unknown field `x`, expected one of ...", "invalid value: ..., expected ...",
    /// "missing field `x`") into key, expected and found.
    pub fn serde(&mut self, prefix: &str, path: &str, message: &str) {
        let join = |a: &str, b: &str| match (a.is_empty(), b.is_empty() || b == ".") {
            (_, true) => a.to_owned(),
            (true, false) => b.to_owned(),
            (false, false) if b.starts_with('[') => format!("{a}{b}"),
            (false, false) => format!("{a}.{b}"),
        };
        let key = join(prefix, path);
        let message = message.lines().next().unwrap_or(message).trim();
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let (field, tail) = rest.split_once('`').unwrap_or((rest, ""));
            let expected = tail.trim_start_matches(',').trim().trim_start_matches("expected ").to_owned();
            let expected = if expected.is_empty() { "no keys here".to_owned() } else { format!("a known key: {expected}") };
            // serde_path_to_error's path already ends at the unknown field.
            let key = if key == field || key.ends_with(&format!(".{field}")) { key } else { join(&key, field) };
            self.push(key, expected, Some("an unknown key".into()));
        } else if let Some(rest) = message.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or(rest);
            self.push(join(&key, field), "this key (it is required)", Some("nothing".into()));
        } else if let Some((found, expected)) = message.rsplit_once(", expected ") {
            let found = found
                .trim_start_matches("invalid value: ")
                .trim_start_matches("invalid type: ")
                .to_owned();
            self.push(key, expected.to_owned(), Some(found));
        } else {
            self.push(key, message.to_owned(), None);
        }
    }

    /// Deserializes `value` into `T`, recording any error at `prefix`.
    pub fn parse<T: serde::de::DeserializeOwned>(&mut self, prefix: &str, value: toml::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let path = e.path().to_string();
                self.serde(prefix, &path, &e.inner().to_string());
                None
            }
        }
    }

    /// Records `key` out of range unless `lo <= v <= hi`.
    pub fn range<T: PartialOrd + fmt::Display + Copy>(&mut self, key: impl Into<String>, v: T, lo: T, hi: T, what: &str) {
        if !(lo <= v && v <= hi) {
            self.push(key, format!("{what} between {lo} and {hi}"), Some(v.to_string()));
        }
    }
}
