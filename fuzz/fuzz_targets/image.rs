//! Fuzz target `image`: the body is `ferry_fuzz_bodies::image::run` (see its docs). The
//! counting allocator is installed so that the body's memory assertions measure.
#![no_main]

#[global_allocator]
static ALLOC: ferry_fuzz_bodies::meter::Meter = ferry_fuzz_bodies::meter::Meter;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_bodies::image::run(data));
