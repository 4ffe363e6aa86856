//! The digits model on the held-out split (the 25% of scikit-learn's digits it never trained or
//! calibrated on): INT8 keeps FP32's accuracy.

mod common;

use ferry_runtime::Precision;

/// (label, 64 pixel values scaled to 0..1 as in training).
fn heldout() -> Vec<(usize, Vec<f32>)> {
    let text = std::fs::read_to_string(common::models_dir().join("digits/heldout.csv")).expect("heldout.csv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut v = l.split(',').map(|x| x.trim().parse::<f32>().expect("number"));
            let label = v.next().expect("label") as usize;
            let px: Vec<f32> = v.map(|x| x / 16.0).collect();
            assert_eq!(px.len(), 64);
            (label, px)
        })
        .collect()
}

fn accuracy(precision: Precision, data: &[(usize, Vec<f32>)]) -> f64 {
    let model = common::load("digits", precision);
    let correct = data
        .iter()
        .filter(|(label, px)| model.infer_tensor(&[1, 1, 8, 8], px, 1).expect("inference").top[0].index == *label)
        .count();
    100.0 * correct as f64 / data.len() as f64
}

#[test]
fn int8_digits_accuracy_is_at_least_95_and_within_one_point_of_fp32() {
    let data = heldout();
    assert!(data.len() >= 400, "held-out split has {} samples", data.len());
    let fp32 = accuracy(Precision::Fp32, &data);
    let int8 = accuracy(Precision::Int8, &data);
    println!("digits held-out accuracy: fp32 {fp32:.2}%, int8 {int8:.2}% (n={})", data.len());
    assert!(int8 >= 95.0, "int8 accuracy {int8:.2}% < 95%");
    assert!((fp32 - int8).abs() <= 1.0, "fp32 {fp32:.2}% vs int8 {int8:.2}%: more than 1 point apart");
}

#[test]
fn digit_pngs_are_read_as_the_digit_they_show() {
    let model = common::load("digits", Precision::Int8);
    for digit in [3usize, 7] {
        let path = common::models_dir().join(format!("images/digit-{digit}.png"));
        let image = ferry_runtime::preprocess::load_image(&path).expect("bundled digit png");
        let answer = model.infer_image(&image, 3).expect("inference");
        assert_eq!(answer.top[0].index, digit, "{}: {:?}", path.display(), answer.top);
        assert_eq!(answer.top[0].label, digit.to_string());
    }
}
