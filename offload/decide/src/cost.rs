//! The cost model: predicted latency (mean, σ, planning quantile) and energy of every path a
//! request could take, from the estimators. Allocation-free: candidates live in a fixed array.
//!
//! An edge path is priced for every form its input may cross the link in (the original, and
//! the shaped forms that edge accepts for the model, [`crate::targets::FormId`]): the time to
//! make the form on the board, then its bytes on the link. The edge's candidate is its form
//! with the least expected latency (the original on ties).

use super::config::{DecideConfig, EnergyConfig, MAX_FORMS, MAX_TARGETS};
use super::estimators::Estimators;
use super::ewma::Ewma;
use super::targets::{FormId, ModelId, TargetId, TargetKind, Targets};

/// What is being decided about: one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestInfo {
    /// Its model.
    pub model: ModelId,
    /// Bytes it sends when offloaded (envelope + input).
    pub up_bytes: u32,
    /// Bytes expected back.
    pub down_bytes: u32,
    /// Relative deadline, µs, if any.
    pub deadline_us: Option<u32>,
    /// Its input is an original image the device can shape (a tensor input is sent as it is).
    pub shapeable: bool,
}

/// The prediction for one path. `f32` to keep decisions small; times in ms.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PathEstimate {
    /// The target.
    pub target: u8,
    /// Local (true) or edge.
    pub local: bool,
    /// Expected latency, ms (edge: includes the expected cost of a failure and fallback).
    pub mean_ms: f32,
    /// Standard deviation, ms.
    pub std_ms: f32,
    /// Planning quantile mean + k·σ, ms.
    pub quantile_ms: f32,
    /// Expected energy on the board, mJ.
    pub energy_mj: f32,
    /// Probability the path ends without an answer (edge only).
    pub fail_p: f32,
    /// The form the input crosses the link in ([`FormId`]; 0, the original, for local paths).
    pub form: u8,
    /// Bytes sent (edge only).
    pub up_bytes: u32,
}

impl PathEstimate {
    /// Its target id.
    pub fn id(&self) -> TargetId {
        TargetId(self.target)
    }

    /// The form its input is sent in.
    pub fn form_id(&self) -> FormId {
        FormId(self.form)
    }
}

/// The available paths for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidates {
    list: [PathEstimate; MAX_TARGETS],
    len: u8,
}

impl Candidates {
    /// None.
    pub const fn empty() -> Candidates {
        Candidates {
            list: [PathEstimate {
                target: 0,
                local: false,
                mean_ms: 0.0,
                std_ms: 0.0,
                quantile_ms: 0.0,
                energy_mj: 0.0,
                fail_p: 0.0,
                form: 0,
                up_bytes: 0,
            }; MAX_TARGETS],
            len: 0,
        }
    }

    /// Adds one (silently ignores more than [`MAX_TARGETS`], which validation prevents).
    pub fn push(&mut self, p: PathEstimate) {
        if usize::from(self.len) < MAX_TARGETS {
            self.list[usize::from(self.len)] = p;
            self.len += 1;
        }
    }

    /// As a slice.
    pub fn as_slice(&self) -> &[PathEstimate] {
        &self.list[..usize::from(self.len)]
    }

    /// The one for a target.
    pub fn get(&self, id: TargetId) -> Option<&PathEstimate> {
        self.as_slice().iter().find(|p| p.target == id.0)
    }

    /// The local one with least mean latency.
    pub fn best_local(&self) -> Option<&PathEstimate> {
        least(self.as_slice().iter().filter(|p| p.local), |p| p.mean_ms)
    }

    /// The edge one with least mean latency.
    pub fn best_edge(&self) -> Option<&PathEstimate> {
        least(self.as_slice().iter().filter(|p| !p.local), |p| p.mean_ms)
    }
}

/// The element with the least key (first on ties).
pub fn least<'a>(it: impl Iterator<Item = &'a PathEstimate>, key: impl Fn(&PathEstimate) -> f32) -> Option<&'a PathEstimate> {
    let mut best: Option<&PathEstimate> = None;
    for p in it {
        if best.is_none_or(|b| key(p) < key(b)) {
            best = Some(p);
        }
    }
    best
}

/// Predicts every path the request can take now. Edges that are down or at their in-flight
/// limit are not candidates.
pub fn predict(
    targets: &Targets,
    est: &Estimators,
    cfg: &DecideConfig,
    energy: &EnergyConfig,
    req: &RequestInfo,
    now_us: u64,
) -> Candidates {
    let k = cfg.quantile_k;
    let idle_mj_per_ms = energy.idle_mw / 1000.0;
    let mut out = Candidates::empty();
    let mut best_local_mean_us = f64::INFINITY;
    for t in targets.iter().filter(|t| t.is_local() && t.serves(req.model)) {
        let TargetKind::Local { mj_per_inference, .. } = t.kind else { continue };
        let (compute, std) = est.local_compute_us(t.id);
        let mean = est.local_wait_us(now_us, t.id) + compute;
        best_local_mean_us = best_local_mean_us.min(mean);
        out.push(PathEstimate {
            target: t.id.0,
            local: true,
            mean_ms: (mean / 1e3) as f32,
            std_ms: (std / 1e3) as f32,
            quantile_ms: ((mean + k * std) / 1e3) as f32,
            energy_mj: (mj_per_inference + idle_mj_per_ms * mean / 1e3) as f32,
            fail_p: 0.0,
            form: 0,
            up_bytes: 0,
        });
    }
    for t in targets.iter().filter(|t| !t.is_local() && t.serves(req.model)) {
        let TargetKind::Edge { max_inflight, timeout_us, .. } = t.kind else { continue };
        let e = est.edge(t.id);
        if e.is_down(now_us) || e.inflight >= max_inflight {
            continue;
        }
        let mut best: Option<PathEstimate> = None;
        for form in (0..=MAX_FORMS as u8).map(FormId) {
            let (up_bytes, encode_us, edge_share) = if form == FormId::ORIGINAL {
                (req.up_bytes, 0.0, 1.0)
            } else if req.shapeable && t.accepts(req.model, form) {
                match est.form_cost(req.model, form) {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                continue;
            };
            let p = edge_path(t.id.0, e, req, (up_bytes, encode_us, edge_share), best_local_mean_us, timeout_us, k, energy, now_us);
            if best.is_none_or(|b| p.mean_ms < b.mean_ms) {
                best = Some(PathEstimate { form: form.0, ..p });
            }
        }
        if let Some(p) = best {
            out.push(p);
        }
    }
    out
}

/// One edge path for the request's input sent as `up_bytes` after `encode_us` on the board,
/// the edge computing `edge_share` of the whole model (a split's tail; 1 otherwise).
#[allow(clippy::too_many_arguments)]
fn edge_path(
    target: u8,
    e: &super::edge::EdgeEstimator,
    req: &RequestInfo,
    (up_bytes, encode_us, edge_share): (u32, f64, f64),
    best_local_mean_us: f64,
    timeout_us: u64,
    k: f64,
    energy: &EnergyConfig,
    now_us: u64,
) -> PathEstimate {
    let idle_mj_per_ms = energy.idle_mw / 1000.0;
    let (net, net_var) = e.link.predict(up_bytes, req.down_bytes);
    let compute = e.compute_at(req.model.index(), now_us).unwrap_or(Ewma::new(0.2));
    let ok_mean = encode_us + e.uplink_wait_us(now_us) + net + e.queue().mean() + edge_share * compute.mean();
    let ok_var = net_var + e.queue().var() + edge_share * edge_share * compute.var();
    let fallback = if best_local_mean_us.is_finite() { best_local_mean_us } else { ok_mean };
    // Three outcomes: refused or failed (the recent rate; it costs about its own time, then
    // the local run), an answer slower than the edge's hard timeout (from the prediction
    // itself: it costs the timeout, then the local run), or an answer.
    let p = e.failure_probability();
    let timeout = timeout_us as f64;
    let q = exceeds(ok_mean, ok_var.sqrt(), timeout);
    let outcomes = [
        (p, ok_mean + fallback, ok_var),
        ((1.0 - p) * q, timeout + fallback, 0.0),
        ((1.0 - p) * (1.0 - q), ok_mean.min(timeout), ok_var),
    ];
    let mean: f64 = outcomes.iter().map(|&(w, m, _)| w * m).sum();
    let var = outcomes.iter().map(|&(w, m, v)| w * (v + (m - mean) * (m - mean))).sum::<f64>().max(0.0);
    let fail = p + (1.0 - p) * q;
    let bytes = f64::from(up_bytes) + f64::from(req.down_bytes);
    let radio = bytes * energy.radio_nj_per_byte / 1e6 + energy.radio_tail_mj;
    PathEstimate {
        target,
        local: false,
        mean_ms: (mean / 1e3) as f32,
        std_ms: (var.sqrt() / 1e3) as f32,
        quantile_ms: ((mean + k * var.sqrt()) / 1e3) as f32,
        energy_mj: (radio + idle_mj_per_ms * mean / 1e3) as f32,
        fail_p: fail as f32,
        form: 0,
        up_bytes,
    }
}

/// P(X > limit) for X normal with `mean` and `sd` (a step when `sd` is 0).
fn exceeds(mean: f64, sd: f64, limit: f64) -> f64 {
    if sd.is_nan() || sd <= 0.0 {
        return if mean > limit { 1.0 } else { 0.0 };
    }
    let z = (limit - mean) / (sd * std::f64::consts::SQRT_2);
    0.5 * libm::erfc(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_matches_known_values() {
        assert!((exceeds(0.0, 1.0, 0.0) - 0.5).abs() < 1e-6);
        assert!((exceeds(0.0, 1.0, 1.645) - 0.05).abs() < 1e-3);
        assert!((exceeds(0.0, 1.0, -1.645) - 0.95).abs() < 1e-3);
        assert!(exceeds(100.0, 10.0, 1_000.0) < 1e-12);
        assert_eq!(exceeds(2.0, 0.0, 1.0), 1.0);
        assert_eq!(exceeds(0.5, 0.0, 1.0), 0.0);
        assert_eq!(exceeds(0.5, f64::NAN, 1.0), 0.0);
    }
}
