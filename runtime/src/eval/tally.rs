//! Per-image answers gathered into the figures of one variant or input form: real top-1 and
//! top-5 against the labels, and top-1 agreement with a reference answer (the FP32 model on
//! the original image), overall and where the reference is confident.

use super::interval::Proportion;
use crate::topk::Class;

/// How many classes an answer needs for the top-5 figure.
pub const TOP_K: usize = 5;

/// The reference probability above which an image counts as one the reference is confident
/// on.
pub const CONFIDENT: f32 = 0.5;

/// The figures of one candidate over a set of images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Its top-1 is the label.
    pub top1: Proportion,
    /// The label is among its top 5.
    pub top5: Proportion,
    /// Its top-1 is the reference's top-1.
    pub agreement: Proportion,
    /// The same, over the images where the reference's top-1 has probability ≥ [`CONFIDENT`].
    pub confident_agreement: Proportion,
    /// Images the reference got right (its top-1 is the label) and the candidate did not.
    pub lost: u32,
    /// Images the candidate got right and the reference did not.
    pub gained: u32,
}

impl Tally {
    /// One image: its `label`, the candidate's answer (best first, at least [`TOP_K`] classes
    /// for a meaningful top-5) and the reference's top class.
    pub fn record(&mut self, label: usize, answer: &[Class], reference: &Class) {
        let first = answer.first().map(|c| c.index);
        self.top1.record(first == Some(label));
        self.top5.record(answer.iter().take(TOP_K).any(|c| c.index == label));
        let (right, reference_right) = (first == Some(label), reference.index == label);
        self.lost += u32::from(reference_right && !right);
        self.gained += u32::from(right && !reference_right);
        let agrees = first == Some(reference.index);
        self.agreement.record(agrees);
        if reference.score >= CONFIDENT {
            self.confident_agreement.record(agrees);
        }
    }
}

impl Tally {
    /// The candidate's real top-1 drop against the reference on the same images, in points
    /// (positive: the candidate is worse), with its 95 % interval: the paired difference of
    /// the two proportions from the discordant images ([`Self::lost`], [`Self::gained`]), Wald
    /// with Agresti and Min's adjustment (half an image added to each discordant count, one to
    /// each concordant, so that few disagreements still give an interval of honest width).
    pub fn top1_drop(&self) -> (f64, f64, f64) {
        let n = f64::from(self.top1.n);
        if n == 0.0 {
            return (0.0, -100.0, 100.0);
        }
        let drop = 100.0 * (f64::from(self.lost) - f64::from(self.gained)) / n;
        let (b, c, m) = (f64::from(self.lost) + 0.5, f64::from(self.gained) + 0.5, n + 2.0);
        let d = (b - c) / m;
        let se = ((b + c) - (b - c) * (b - c) / m).max(0.0).sqrt() / m;
        let (low, high) = (100.0 * (d - 1.96 * se), 100.0 * (d + 1.96 * se));
        (drop, low.max(-100.0), high.min(100.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(index: usize, score: f32) -> Class {
        Class { index, label: String::new(), score }
    }

    #[test]
    fn counts_top1_top5_and_agreement() {
        let mut t = Tally::default();
        let reference = class(3, 0.9);
        t.record(3, &[class(3, 0.8), class(1, 0.1)], &reference);
        t.record(1, &[class(3, 0.5), class(2, 0.1), class(1, 0.1)], &reference);
        t.record(7, &[class(2, 0.5)], &class(4, 0.2));
        assert_eq!((t.top1.hits, t.top1.n), (1, 3));
        assert_eq!((t.top5.hits, t.top5.n), (2, 3));
        assert_eq!((t.agreement.hits, t.agreement.n), (2, 3));
        assert_eq!((t.confident_agreement.hits, t.confident_agreement.n), (2, 2));
        // Image 1: reference (3) right, candidate right: neither; image 2: reference wrong
        // (label 1), candidate wrong: neither; image 3: both wrong.
        assert_eq!((t.lost, t.gained), (0, 0));
    }

    #[test]
    fn the_top1_drop_is_paired_and_its_interval_covers_it() {
        let mut t = Tally::default();
        let right = class(1, 0.9);
        // 500 images: the reference right on 400; the candidate loses 10 of them, gains 4.
        for i in 0..500 {
            let label = if i < 400 { 1 } else { 2 };
            let reference = if i < 400 { right.clone() } else { class(3, 0.9) };
            let answer = if i < 10 {
                class(5, 0.5)
            } else if (400..404).contains(&i) {
                class(2, 0.5)
            } else {
                reference.clone()
            };
            t.record(label, &[answer], &reference);
        }
        assert_eq!((t.lost, t.gained), (10, 4));
        let (drop, low, high) = t.top1_drop();
        assert!((drop - 1.2).abs() < 1e-9, "{drop}");
        assert!(low < drop && drop < high && low > -1.0 && high < 3.0, "{low} {high}");
        // Identical answers: no drop, a narrow interval around it.
        let mut same = Tally::default();
        for _ in 0..500 {
            same.record(1, &[right.clone()], &right);
        }
        let (d, lo, hi) = same.top1_drop();
        assert!(d == 0.0 && lo < 0.0 && hi > 0.0 && hi < 0.5, "{lo} {hi}");
    }
}
