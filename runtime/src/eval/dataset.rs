//! A labelled image set on disk — a folder with `images/` and `labels.csv`
//! (`file,class_index,synset,label`, 0-based ImageNet-1k indices) — and its fixed split.
//!
//! The split is made once, in code, from a seed: the files sorted by name, shuffled by a
//! Fisher–Yates pass driven by SplitMix64 from [`Split::SEED`], the first
//! [`Split::CALIBRATION`] for calibration and the rest for evaluation. The same files give the
//! same split on every machine and in every language that implements those twenty lines
//! (`models/make.py` does, for its calibration).

use std::path::{Path, PathBuf};

use crate::error::RuntimeError;

/// The most rows a `labels.csv` may have (the shared set has 650).
pub const MAX_ROWS: usize = 100_000;

/// One image and its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledImage {
    /// The image file.
    pub path: PathBuf,
    /// Its class, 0-based.
    pub class: usize,
}

/// A labelled set, in file-name order.
#[derive(Debug, Clone)]
pub struct LabelledSet {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// Every image, sorted by file name.
    pub images: Vec<LabelledImage>,
}

/// Which part of the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitPart {
    /// The images quantization may calibrate on.
    Calibration,
    /// The images figures are reported on.
    Evaluation,
    /// Both (for a figure over the whole set, said so).
    All,
}

impl SplitPart {
    /// `calibration`, `evaluation` or `all`.
    pub fn name(self) -> &'static str {
        match self {
            SplitPart::Calibration => "calibration",
            SplitPart::Evaluation => "evaluation",
            SplitPart::All => "all",
        }
    }
}

/// The fixed split of a set.
#[derive(Debug, Clone)]
pub struct Split {
    /// Calibration images, in split order.
    pub calibration: Vec<LabelledImage>,
    /// Evaluation images, in split order.
    pub evaluation: Vec<LabelledImage>,
}

impl Split {
    /// The seed every figure in the manifests is measured with.
    pub const SEED: u64 = 0x00FE_22A1_5EED;
    /// Calibration images taken first; the rest are for evaluation.
    pub const CALIBRATION: usize = 150;

    /// The split of `set` with [`Self::SEED`] and [`Self::CALIBRATION`].
    pub fn of(set: &LabelledSet) -> Split {
        Split::seeded(set, Self::SEED, Self::CALIBRATION)
    }

    /// The split of `set` with another seed or size (tests).
    pub fn seeded(set: &LabelledSet, seed: u64, calibration: usize) -> Split {
        let mut order = set.images.clone();
        let mut state = seed;
        for i in (1..order.len()).rev() {
            let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let evaluation = order.split_off(calibration.min(order.len()));
        Split { calibration: order, evaluation }
    }

    /// The images of one part.
    pub fn part(&self, part: SplitPart) -> Vec<LabelledImage> {
        match part {
            SplitPart::Calibration => self.calibration.clone(),
            SplitPart::Evaluation => self.evaluation.clone(),
            SplitPart::All => self.calibration.iter().chain(&self.evaluation).cloned().collect(),
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): the generator the split's shuffle draws from.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl LabelledSet {
    /// Reads `dir/labels.csv` and checks that every image it lists is in `dir/images/`.
    /// Classes must be below `classes`.
    pub fn load(dir: &Path, classes: usize) -> Result<LabelledSet, RuntimeError> {
        let csv = dir.join("labels.csv");
        let fail = |message: String| RuntimeError::Dataset { path: csv.clone(), message };
        let text = std::fs::read_to_string(&csv).map_err(|e| fail(format!("cannot read: {e}")))?;
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim().starts_with("file,class_index") => {}
            _ => return Err(fail("line 1: expected the header `file,class_index,synset,label`".into())),
        }
        let mut images = Vec::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            if images.len() >= MAX_ROWS {
                return Err(fail(format!("more than {MAX_ROWS} rows")));
            }
            let mut fields = line.splitn(3, ',');
            let (file, class) = (fields.next().unwrap_or("").trim(), fields.next().unwrap_or("").trim());
            let class: usize = class
                .parse()
                .ok()
                .filter(|c| *c < classes)
                .ok_or_else(|| fail(format!("line {}: class_index `{class}`: expected an integer below {classes}", i + 1)))?;
            if file.is_empty() || file.contains('/') || file.contains("..") {
                return Err(fail(format!("line {}: file `{file}`: expected a file name in images/", i + 1)));
            }
            let path = dir.join("images").join(file);
            if !path.is_file() {
                return Err(fail(format!("line {}: {} does not exist", i + 1, path.display())));
            }
            images.push(LabelledImage { path, class });
        }
        if images.is_empty() {
            return Err(fail("no images listed".into()));
        }
        images.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(LabelledSet { dir: dir.to_path_buf(), images })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> LabelledSet {
        let images = (0..n).map(|i| LabelledImage { path: PathBuf::from(format!("img{i:04}.jpg")), class: i % 7 }).collect();
        LabelledSet { dir: PathBuf::from("."), images }
    }

    #[test]
    fn the_split_is_fixed_disjoint_and_complete() {
        let s = set(650);
        let (a, b) = (Split::of(&s), Split::of(&s));
        assert_eq!(a.calibration, b.calibration);
        assert_eq!(a.evaluation, b.evaluation);
        assert_eq!((a.calibration.len(), a.evaluation.len()), (150, 500));
        let mut all: Vec<_> = a.part(SplitPart::All).into_iter().map(|i| i.path).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 650);
        // Shuffled, not the first 150 files by name.
        assert!(a.calibration.iter().any(|i| i.path > PathBuf::from("img0300.jpg")));
        // Another seed, another split.
        assert_ne!(Split::seeded(&s, 1, 150).calibration, a.calibration);
    }

    #[test]
    fn splitmix64_is_the_published_generator() {
        // First outputs for seed 0 (the reference implementation, Vigna's splitmix64.c).
        let mut state = 0;
        assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut state), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn a_bad_labels_file_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("images")).unwrap();
        std::fs::write(dir.path().join("images/a.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("labels.csv"), "file,class_index,synset,label\na.jpg,1000,n0,x\n").unwrap();
        let e = LabelledSet::load(dir.path(), 1000).unwrap_err().to_string();
        assert!(e.contains("labels.csv") && e.contains("line 2") && e.contains("below 1000"), "{e}");
        std::fs::write(dir.path().join("labels.csv"), "file,class_index,synset,label\nb.jpg,3,n0,x\n").unwrap();
        let e = LabelledSet::load(dir.path(), 1000).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("does not exist"), "{e}");
        let e = LabelledSet::load(&dir.path().join("nope"), 1000).unwrap_err().to_string();
        assert!(e.contains("cannot read"), "{e}");
    }
}
