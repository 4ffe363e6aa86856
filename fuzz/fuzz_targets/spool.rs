//! Fuzz target `spool`: the body is `ferry_fuzz_bodies::spool::run` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_bodies::spool::run(data));
