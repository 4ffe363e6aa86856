//! Decoding an envelope is on the hot path of both device and edge: it must not allocate.
//! A counting global allocator proves it (counts are per thread, so parallel tests in this
//! binary do not disturb each other).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ferry_protocol::*;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers every operation to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    (ALLOCATIONS.with(Cell::get) - before, r)
}

fn request_bytes(input: InputRef<'_>) -> Vec<u8> {
    let req = RequestRef {
        request_id: 42,
        device_id: DeviceId::new("cam-01").unwrap(),
        model: ModelName::new("mobilenet_v2").unwrap(),
        precision: Precision::Fp32,
        deadline_ms: Some(100),
        sent_at_us: 1,
        input,
    };
    let mut out = Vec::new();
    encode_request(&req, &mut out).unwrap();
    out
}

#[test]
fn decoding_a_request_allocates_nothing() {
    let image = request_bytes(InputRef::Image {
        format: ImageFormat::Png,
        bytes: &[7; 5000],
    });
    let data = vec![0u8; 3 * 224 * 224 * 4];
    let shape = Shape::new(&[1, 3, 224, 224]).unwrap();
    let tensor = request_bytes(InputRef::Tensor(
        TensorRef::new(DType::F32, shape, &data).unwrap(),
    ));
    let limits = Limits::default();

    let (n, decoded) = allocations_during(|| {
        let a = decode_request(&image, &limits).map(|r| r.input.payload().len());
        let b = decode_request(&tensor, &limits).map(|r| r.input.payload().len());
        (a, b)
    });
    assert_eq!(decoded, (Ok(5000), Ok(data.len())));
    assert_eq!(n, 0, "decode_request allocated {n} times");
}

#[test]
fn decoding_a_bad_request_and_answering_it_allocates_nothing() {
    let mut bad = request_bytes(InputRef::Image {
        format: ImageFormat::Jpeg,
        bytes: b"jpeg",
    });
    bad[3] = 9; // unknown version
    let mut out = Vec::with_capacity(512);
    let (n, to) = allocations_during(|| {
        let err = decode_request(&bad, &Limits::default()).unwrap_err();
        encode_decode_failure(&err, EdgeTimings::default(), &mut out)
    });
    assert_eq!(to.unwrap(), "cam-01");
    assert_eq!(n, 0, "error path allocated {n} times");
}

#[test]
fn decoding_a_response_and_walking_its_top_k_allocates_nothing() {
    let entries = [
        TopKEntry {
            class: 1,
            score: 0.5,
            label: "one",
        },
        TopKEntry {
            class: 2,
            score: 0.25,
            label: "two",
        },
    ];
    let output = vec![0u8; 4000];
    let shape = Shape::new(&[1, 1000]).unwrap();
    let resp = ResponseRef {
        request_id: 1,
        status: Status::Ok,
        detail: "",
        timings: EdgeTimings::default(),
        top_k: TopKList::from_entries(&entries),
        output: Some(TensorRef::new(DType::F32, shape, &output).unwrap()),
    };
    let mut buf = Vec::new();
    encode_response(&resp, &mut buf).unwrap();

    let (n, sum) = allocations_during(|| {
        let r = decode_response(&buf, &Limits::default()).unwrap();
        r.top_k
            .iter()
            .map(|e| e.class as usize + e.label.len())
            .sum::<usize>()
    });
    assert_eq!(sum, 1 + 3 + 2 + 3);
    assert_eq!(n, 0, "decode_response allocated {n} times");
}

#[test]
fn encoding_into_a_reused_buffer_allocates_nothing_in_steady_state() {
    let payload = vec![1u8; 10_000];
    let input = InputRef::Image {
        format: ImageFormat::Jpeg,
        bytes: &payload,
    };
    let mut out = request_bytes(input); // first message sizes the buffer
    let req = decode_request(&out.clone(), &Limits::default())
        .unwrap()
        .to_request();
    let (n, _) = allocations_during(|| {
        for _ in 0..10 {
            encode_request(&req.as_ref(), &mut out).unwrap();
        }
    });
    assert_eq!(n, 0, "steady-state encode allocated {n} times");
}
