//! From a model's scores to the answer a caller reads: probabilities and the top k classes.

/// One class of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    /// The class index in the model's output.
    pub index: usize,
    /// Its label.
    pub label: String,
    /// Its probability.
    pub score: f32,
}

/// Softmax in place, stable for large logits.
pub fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    if sum > 0.0 && sum.is_finite() {
        for s in scores.iter_mut() {
            *s /= sum;
        }
    }
}

/// The `k` highest-scoring classes, best first (ties: lower index first; NaN scores last).
pub fn top_k(probabilities: &[f32], labels: &[String], k: usize) -> Vec<Class> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (probabilities[a], probabilities[b]);
        pb.partial_cmp(&pa).unwrap_or_else(|| pa.is_nan().cmp(&pb.is_nan())).then(a.cmp(&b))
    });
    order
        .into_iter()
        .take(k)
        .map(|index| Class {
            index,
            label: labels.get(index).cloned().unwrap_or_else(|| format!("class {index}")),
            score: probabilities[index],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order_even_for_large_logits() {
        let mut s = [1000.0, 999.0, 0.0];
        softmax(&mut s);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(s[0] > s[1] && s[1] > s[2]);
    }

    #[test]
    fn top_k_orders_best_first_and_labels_each_class() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let top = top_k(&[0.2, f32::NAN, 0.7], &labels, 5);
        assert_eq!(top.iter().map(|c| c.index).collect::<Vec<_>>(), vec![2, 0, 1]);
        assert_eq!(top[0].label, "c");
    }
}
