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
}

impl Tally {
    /// One image: its `label`, the candidate's answer (best first, at least [`TOP_K`] classes
    /// for a meaningful top-5) and the reference's top class.
    pub fn record(&mut self, label: usize, answer: &[Class], reference: &Class) {
        let first = answer.first().map(|c| c.index);
        self.top1.record(first == Some(label));
        self.top5.record(answer.iter().take(TOP_K).any(|c| c.index == label));
        let agrees = first == Some(reference.index);
        self.agreement.record(agrees);
        if reference.score >= CONFIDENT {
            self.confident_agreement.record(agrees);
        }
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
    }
}
