//! Replays every kept fuzz input through its target's body: the minimized corpora in
//! `fuzz/corpus/<target>/` and the inputs that once found a defect, `fuzz/regressions/<target>/`.
//! On stable, in the workspace test run: what the fuzzer learned stays tested.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use ferry_fuzz_bodies::meter::{self, Meter};

#[global_allocator]
static ALLOC: Meter = Meter;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    assert!(
        meter::installed(),
        "the counting allocator is not the global allocator"
    );
    let (_, body) = ferry_fuzz_bodies::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .copied()
        .expect("a target of that name");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = files(&root.join("corpus").join(target));
    assert!(!corpus.is_empty(), "no corpus kept for {target}");
    let regressions = files(&root.join("regressions").join(target));
    let mut failed = Vec::new();
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).expect("read a corpus file");
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs fail: {failed:#?}",
        failed.len(),
        corpus.len() + regressions.len()
    );
}

#[test]
fn the_envelope_corpus_decodes_without_a_defect() {
    replay("envelope");
}

#[test]
fn the_image_corpus_preprocesses_within_its_memory_bound() {
    replay("image");
}

#[test]
fn the_config_corpus_loads_or_is_refused_with_a_named_file() {
    replay("config");
}

#[test]
fn the_spool_corpus_opens_reads_appends_and_reopens() {
    replay("spool");
}

#[test]
fn the_shipped_manifests_parse_for_the_bodies() {
    assert_eq!(ferry_fuzz_bodies::models::manifests().len(), 2);
}

#[test]
fn the_meter_sees_a_large_allocation() {
    let (v, peak) = meter::measure(|| vec![1u8; 1 << 20]);
    assert_eq!(v.len(), 1 << 20);
    assert!(peak >= 1 << 20, "peak {peak}");
}
