//! Which local variants may run at all: a variant other than FP32 is used only if its model's
//! manifest shows it within `[accuracy] max_drop` of the FP32 variant. Among the variants that
//! pass, the decider then picks the fastest by measurement (warm-up runs at start-up, every
//! completed run after), so an INT8 that is slower on this board is not taken, and an INT8 that
//! is faster but too inaccurate is never a candidate.
//!
//! Likewise for what crosses the link: a shaped input form an edge target lists (`forms`) is
//! offered for a model only if the model's manifest measured it (`[[evaluation.form]]`) within
//! `[accuracy] max_top1_drop` points of real top-1 of the original input ([`offer_forms`]).

use ferry_hal::Precision;
use ferry_decide::config::{FormConfig, TargetConfig};
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

/// Why a shaped form may or may not be sent for a model.
#[derive(Debug, Clone, PartialEq)]
pub enum FormVerdict {
    /// Within the bound: its figures.
    Within {
        /// Real top-1 points below the original input's.
        drop: f32,
        /// Mean payload bytes.
        mean_bytes: u32,
        /// Time to make it on the measuring machine, ms.
        make_ms: f64,
        /// The edge's compute for it as a share of the whole model's (a split's tail; 1 for
        /// a shaped input).
        edge_share: f64,
    },
    /// It loses more top-1 than the manifest allows.
    TooLossy {
        /// Real top-1 points below the original input's.
        drop: f32,
        /// `[accuracy] max_top1_drop`.
        max: f32,
    },
    /// The manifest has no `[[evaluation.form]]` for it.
    Unmeasured,
}

/// The verdict for sending `model`'s input in form `name` (a shaped input, or a split
/// `split@N` from `[[evaluation.cut]]`).
pub fn form_verdict(manifest: &Manifest, name: &str) -> FormVerdict {
    let Some(e) = manifest.evaluation.as_ref() else { return FormVerdict::Unmeasured };
    let figures = if name.starts_with("split@") {
        e.cut(name).map(|c| (c.top1, c.bytes, c.make_ms, c.tail_ms / (c.head_ms + c.tail_ms).max(1e-9)))
    } else {
        e.form(name).map(|f| (f.top1, f.mean_bytes, f.make_ms, 1.0))
    };
    let Some((top1, mean_bytes, make_ms, edge_share)) = figures else { return FormVerdict::Unmeasured };
    let (drop, max) = (e.top1 - top1, manifest.accuracy.max_top1_drop);
    if drop <= max {
        FormVerdict::Within { drop, mean_bytes, make_ms, edge_share: edge_share.clamp(1e-3, 1.0) }
    } else {
        FormVerdict::TooLossy { drop, max }
    }
}

/// Bytes of a request beyond its payload (the envelope: ids, model name, deadline, input tag).
fn envelope_bytes(model: &str) -> u32 {
    use ferry_protocol::{encoded_request_len, DeviceId, ImageFormat, InputRef, ModelName, RequestRef};
    let (Ok(device_id), Ok(model)) = (DeviceId::new("device-0000000000"), ModelName::new(model)) else { return 0 };
    let request = RequestRef {
        request_id: 0,
        device_id,
        model,
        precision: ferry_protocol::Precision::Fp32,
        deadline_ms: Some(1000),
        sent_at_us: 0,
        input: InputRef::ShapedImage { format: ImageFormat::Jpeg, bytes: &[] },
    };
    u32::try_from(encoded_request_len(&request)).unwrap_or(0)
}

/// Fills `config.forms` with every form an edge target lists that a served model's manifest
/// allows (see [`form_verdict`]), its measured bytes and making time as the decision's priors
/// (the agent measures both on this board from the first offload in that form on), logging
/// each form left out and why. A name that is no form is an error naming its key.
pub fn offer_forms(config: &mut Config, store: &ModelStore) -> Result<(), String> {
    let mut models: Vec<String> = Vec::new();
    for t in &config.targets {
        if let TargetConfig::Local(l) = t {
            if !models.contains(&l.model) {
                models.push(l.model.clone());
            }
        }
    }
    let mut offered: Vec<FormConfig> = Vec::new();
    // Each model's manifest read once, however many forms and edges name it.
    let mut manifests: std::collections::HashMap<String, Option<Manifest>> = std::collections::HashMap::new();
    for (i, t) in config.targets.iter().enumerate() {
        let TargetConfig::Edge(e) = t else { continue };
        for (j, name) in e.forms.iter().enumerate() {
            match name.parse::<ferry_runtime::forms::Form>() {
                Ok(ferry_runtime::forms::Form::Original) => {
                    return Err(format!("targets[{i}].forms[{j}]: expected a shaped form (the original is always sent when it costs least), got `original`"))
                }
                Ok(_) => {}
                Err(why) => return Err(format!("targets[{i}].forms[{j}]: {why}")),
            }
            let served = if e.models.is_empty() { &models } else { &e.models };
            for model in served {
                if offered.iter().any(|f| &f.model == model && &f.name == name) {
                    continue;
                }
                let Some(manifest) = manifests.entry(model.clone()).or_insert_with(|| store.manifest(model).ok()) else {
                    continue;
                };
                match form_verdict(manifest, name) {
                    FormVerdict::Within { .. } if offered.iter().filter(|f| &f.model == model).count() >= ferry_decide::config::MAX_FORMS => {
                        tracing::warn!(model = %model, form = %name, "input form not sent: at most 8 shaped forms per model");
                    }
                    FormVerdict::Within { drop, mean_bytes, make_ms, edge_share } => {
                        tracing::info!(model = %model, form = %name, top1_drop = drop, mean_bytes, make_ms, edge_share, "input form offered to the edge");
                        offered.push(FormConfig {
                            model: model.clone(),
                            name: name.clone(),
                            up_bytes: mean_bytes.saturating_add(envelope_bytes(model)),
                            encode_ms: make_ms,
                            edge_share,
                        });
                    }
                    FormVerdict::TooLossy { drop, max } => tracing::warn!(
                        model = %model, form = %name, manifest = %manifest.path.display(), top1_drop = drop, max_top1_drop = max,
                        "input form not sent: it loses more top-1 than the manifest allows"
                    ),
                    FormVerdict::Unmeasured => tracing::info!(
                        model = %model, form = %name, manifest = %manifest.path.display(),
                        "input form not sent for this model: its manifest has no [[evaluation.form]] figures for it (ferry eval measures them)"
                    ),
                }
            }
            if !offered.iter().any(|f| &f.name == name) {
                tracing::warn!(target = %e.name, form = %name, "input form listed but sent for no model: no served model's manifest allows it");
            }
        }
    }
    config.forms = offered;
    Ok(())
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

    fn repo_store() -> ModelStore {
        ModelStore::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"))
    }

    fn config_with_edge_forms(forms: &str) -> Config {
        let text = format!(
            "[thermal]\nthrottle_point_c = 85.0\nset_point_c = 75.0\n\
             [[targets]]\nkind = \"local\"\nname = \"l\"\nmodel = \"efficientnet-lite0\"\nprecision = \"fp32\"\n\
             [[targets]]\nkind = \"edge\"\nname = \"e\"\nforms = {forms}\n"
        );
        Config::from_toml(&text).expect("test config")
    }

    #[test]
    fn a_form_is_offered_only_within_the_manifests_top1_bound() {
        let store = repo_store();
        let manifest = store.manifest("efficientnet-lite0").unwrap();
        // jpeg85 loses 2.0 points of real top-1 (bound 2.0), jpeg50 5.4.
        assert!(matches!(form_verdict(&manifest, "jpeg85"), FormVerdict::Within { mean_bytes: 15445, .. }));
        assert!(matches!(form_verdict(&manifest, "jpeg50"), FormVerdict::TooLossy { max, .. } if max == 2.0));
        assert_eq!(form_verdict(&manifest, "jpeg60"), FormVerdict::Unmeasured);

        let mut config = config_with_edge_forms(r#"["jpeg85", "jpeg50", "int8-tensor"]"#);
        offer_forms(&mut config, &store).unwrap();
        let names: Vec<&str> = config.forms.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["jpeg85", "int8-tensor"]);
        let jpeg = &config.forms[0];
        assert_eq!(jpeg.model, "efficientnet-lite0");
        // The payload plus the envelope.
        assert!(jpeg.up_bytes > 15445 && jpeg.up_bytes < 15445 + 200, "{jpeg:?}");
        // The decider takes the result.
        ferry_decide::Decider::new(&config).unwrap();
    }

    #[test]
    fn a_split_is_offered_from_its_measured_cut_with_the_tails_share() {
        let store = repo_store();
        let manifest = store.manifest("efficientnet-lite0").unwrap();
        let FormVerdict::Within { mean_bytes, make_ms, edge_share, .. } = form_verdict(&manifest, "split@66") else { panic!("split@66 is within the bound") };
        assert_eq!(mean_bytes, 9408);
        assert!(make_ms > 0.0);
        // Its tail is 13.24 of 63.25 + 13.24 ms.
        assert!((edge_share - 13.24 / 76.49).abs() < 1e-3, "{edge_share}");
        assert_eq!(form_verdict(&manifest, "split@7"), FormVerdict::Unmeasured);
        let mut config = config_with_edge_forms(r#"["jpeg85", "split@66"]"#);
        offer_forms(&mut config, &store).unwrap();
        let split = config.forms.iter().find(|f| f.name == "split@66").expect("offered");
        assert!((split.edge_share - edge_share).abs() < 1e-9);
        ferry_decide::Decider::new(&config).unwrap();
    }

    #[test]
    fn a_name_that_is_no_form_is_an_error_naming_its_key() {
        let store = repo_store();
        let mut config = config_with_edge_forms(r#"["jpeg85", "png"]"#);
        let e = offer_forms(&mut config, &store).unwrap_err();
        assert!(e.starts_with("targets[1].forms[1]: `png`: expected"), "{e}");
    }
}
