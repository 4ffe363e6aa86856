//! EfficientNet-Lite0 INT8 against FP32 on the bundled evaluation images (none of which the
//! INT8 calibration saw): where FP32 is confident (p >= 0.3) INT8 gives the same top-1,
//! elsewhere INT8's top-1 stays within FP32's top-5; the known images get their known classes.

mod common;

use ferry_runtime::{preprocess, Precision};

const CONFIDENT: f32 = 0.3;
/// ImageNet's domestic cat classes: tabby, tiger cat, Persian, Siamese, Egyptian cat.
const CAT_CLASSES: std::ops::RangeInclusive<usize> = 281..=285;
const ESPRESSO: usize = 967;

fn eval_images() -> Vec<std::path::PathBuf> {
    let mut images: Vec<_> = std::fs::read_dir(common::models_dir().join("images"))
        .expect("models/images")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    images.sort();
    images
}

#[test]
fn int8_agrees_with_fp32_where_fp32_is_confident_and_stays_in_its_top5_elsewhere() {
    let fp32 = common::load("efficientnet-lite0", Precision::Fp32);
    let int8 = common::load("efficientnet-lite0", Precision::Int8);
    let images = eval_images();
    assert!(images.len() >= 8, "expected the bundled evaluation images, found {}", images.len());
    let mut agree = 0;
    for path in &images {
        let image = preprocess::load_image(path).expect("bundled image");
        let a = fp32.infer_image(&image, 5).expect("fp32");
        let b = int8.infer_image(&image, 5).expect("int8");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        println!(
            "{name:16} fp32 {:<28} {:.3}   int8 {:<28} {:.3}",
            a.top[0].label, a.top[0].score, b.top[0].label, b.top[0].score
        );
        if a.top[0].index == b.top[0].index {
            agree += 1;
        }
        if a.top[0].score >= CONFIDENT {
            assert_eq!(b.top[0].index, a.top[0].index, "{name}: fp32 is confident ({:.3}) but int8 differs", a.top[0].score);
        } else {
            assert!(a.top.iter().any(|c| c.index == b.top[0].index), "{name}: int8 top-1 {} not in fp32 top-5", b.top[0].label);
        }
    }
    println!("top-1 agreement: {agree}/{}", images.len());
}

#[test]
fn the_cat_is_a_cat_and_the_espresso_is_espresso_in_both_precisions() {
    for precision in Precision::ALL {
        let model = common::load("efficientnet-lite0", precision);
        let dir = common::models_dir().join("images");
        let cat = model.infer_image(&preprocess::load_image(&dir.join("cat.jpg")).unwrap(), 5).unwrap();
        assert!(CAT_CLASSES.contains(&cat.top[0].index), "{precision}: cat.jpg → {:?}", cat.top[0]);
        let coffee = model.infer_image(&preprocess::load_image(&dir.join("espresso.jpg")).unwrap(), 5).unwrap();
        assert_eq!(coffee.top[0].index, ESPRESSO, "{precision}: espresso.jpg → {:?}", coffee.top[0]);
        assert_eq!(coffee.top[0].label, "espresso");
    }
}

#[test]
fn a_loaded_model_is_shared_across_threads_and_gives_the_same_answer() {
    let model = std::sync::Arc::new(common::load("efficientnet-lite0", Precision::Int8));
    let image = preprocess::load_image(&common::models_dir().join("images/espresso.jpg")).unwrap();
    let tensor = preprocess::image_to_tensor(model.manifest(), &image);
    let reference = model.infer_tensor(&[1, 3, 224, 224], &tensor, 1).unwrap().top[0].clone();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (model, tensor) = (model.clone(), tensor.clone());
            std::thread::spawn(move || (0..3).map(|_| model.infer_tensor(&[1, 3, 224, 224], &tensor, 1).unwrap().top[0].clone()).collect::<Vec<_>>())
        })
        .collect();
    for h in handles {
        for got in h.join().unwrap() {
            assert_eq!(got.index, reference.index);
            assert!((got.score - reference.score).abs() < 1e-5);
        }
    }
}
