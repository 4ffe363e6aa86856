//! Which local variants may run at all: a variant other than FP32 is used only if its model's
//! manifest shows it within `[accuracy] max_drop` of the FP32 variant. Among the variants that
//! pass, the decider then picks the fastest by measurement (warm-up runs at start-up, every
//! completed run after), so an INT8 that is slower on this board is not taken, and an INT8 that
//! is faster but too inaccurate is never a candidate.

use ferry_hal::Precision;
use ferry_decide::config::TargetConfig;
use ferry_decide::Config;
use ferry_runtime::{Manifest, ModelStore};

/// Why a variant may or may not run.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// FP32 is the reference.
    Reference,
    /// Within the bound.
    Within {
        /// Points below FP32 in the manifest's metric (negative: better than FP32).
        drop: f32,
        /// The manifest's bound.
        max_drop: f32,
    },
    /// Too inaccurate.
    TooInaccurate {
        /// Points below FP32 in the manifest's metric.
        drop: f32,
        /// The manifest's bound.
        max_drop: f32,
    },
    /// The manifest has no measured figure for this variant or for FP32.
    Unmeasured,
}

impl Verdict {
    /// May the variant run?
    pub fn allowed(&self) -> bool {
        matches!(self, Verdict::Reference | Verdict::Within { .. })
    }
}

/// The verdict for one precision of a model, from its manifest.
pub fn verdict(manifest: &Manifest, precision: Precision) -> Verdict {
    if precision == Precision::Fp32 {
        return Verdict::Reference;
    }
    let figure = |p: Precision| manifest.variants.iter().find(|v| v.precision == p).and_then(|v| v.accuracy);
    let (Some(reference), Some(this)) = (figure(Precision::Fp32), figure(precision)) else {
        return Verdict::Unmeasured;
    };
    let (drop, max_drop) = (reference - this, manifest.accuracy.max_drop);
    if drop <= max_drop {
        Verdict::Within { drop, max_drop }
    } else {
        Verdict::TooInaccurate { drop, max_drop }
    }
}

/// Removes from `config` every local target whose variant the manifest does not allow, logging
/// why; returns the names removed. A model whose manifest cannot be read keeps its targets:
/// loading it fails next with the store's own error, naming the file.
pub fn enforce(config: &mut Config, store: &ModelStore) -> Vec<String> {
    let mut removed = Vec::new();
    config.targets.retain(|t| {
        let TargetConfig::Local(l) = t else { return true };
        let Ok(manifest) = store.manifest(&l.model) else { return true };
        let v = verdict(&manifest, l.precision);
        match &v {
            Verdict::Reference | Verdict::Within { .. } => {}
            Verdict::TooInaccurate { drop, max_drop } => tracing::warn!(
                target = %l.name,
                manifest = %manifest.path.display(),
                metric = %manifest.accuracy.metric,
                drop,
                max_drop,
                "local variant not used: its accuracy is below what the manifest allows"
            ),
            Verdict::Unmeasured => tracing::warn!(
                target = %l.name,
                manifest = %manifest.path.display(),
                "local variant not used: the manifest gives no measured accuracy for it or for fp32 (`accuracy` under [[variant]])"
            ),
        }
        if !v.allowed() {
            removed.push(l.name.clone());
        }
        v.allowed()
    });
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(fp32: Option<f32>, int8: Option<f32>, max_drop: f32) -> Manifest {
        let fig = |a: Option<f32>| a.map(|x| format!("accuracy = {x}\n")).unwrap_or_default();
        let text = format!(
            "name = \"m\"\nlabels = \"labels.txt\"\nsource = \"test\"\nlicence = \"test\"\n[input]\nname = \"x\"\nshape = [1, 3, 4, 4]\n\
             [preprocess]\ncolor = \"rgb\"\nresize_shorter = 4\nmean = [0.0, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]\n[output]\nname = \"y\"\nscores = \"logits\"\nclasses = 2\n\
             [accuracy]\nmax_drop = {max_drop}\n\
             [[variant]]\nprecision = \"fp32\"\nfile = \"m.fp32.onnx\"\n{}\
             [[variant]]\nprecision = \"int8\"\nfile = \"m.int8.onnx\"\n{}",
            fig(fp32),
            fig(int8)
        );
        Manifest::parse(&text, std::path::Path::new("/models/m/manifest.toml")).expect("test manifest")
    }

    #[test]
    fn fp32_is_the_reference_and_always_allowed() {
        assert_eq!(verdict(&manifest(None, None, 1.0), Precision::Fp32), Verdict::Reference);
    }

    #[test]
    fn int8_within_the_drop_is_allowed_and_beyond_it_is_not() {
        assert!(verdict(&manifest(Some(99.5), Some(99.0), 1.0), Precision::Int8).allowed());
        assert!(verdict(&manifest(Some(99.5), Some(99.8), 1.0), Precision::Int8).allowed());
        let v = verdict(&manifest(Some(100.0), Some(70.0), 10.0), Precision::Int8);
        assert_eq!(v, Verdict::TooInaccurate { drop: 30.0, max_drop: 10.0 });
        assert!(!v.allowed());
    }

    #[test]
    fn a_variant_without_a_measured_figure_is_not_used() {
        assert_eq!(verdict(&manifest(Some(99.0), None, 1.0), Precision::Int8), Verdict::Unmeasured);
        assert_eq!(verdict(&manifest(None, Some(99.0), 1.0), Precision::Int8), Verdict::Unmeasured);
    }
}
