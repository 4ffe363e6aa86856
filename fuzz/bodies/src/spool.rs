//! The telemetry spool ([`ferry_agent::telemetry::spool`]) opened over a directory holding
//! whatever a crash, a power cut or a bad disk left: up to three segment files of arbitrary
//! bytes under arbitrary names, and optionally the `ack` and `reserved` files. Then it is
//! read to the end, appended to, acknowledged, closed and opened again. Properties, beyond
//! "never a panic":
//!
//! - it opens (garbage is cut off as a torn tail, never refused) and reads back records in
//!   strictly increasing sequence order, none before the head, none at or past the next seq;
//! - an append succeeds with a sequence number past every record read, and that record reads
//!   back, before and after closing and reopening;
//! - a sequence number is never given twice: after the reopen, the next append is later still.
//!
//! # Input layout
//!
//! ```text
//! flags u8:  bit 0 fix record checksums | bit 1 ack file | bit 2 reserved file
//!            bits 3-4 fsync (never, every record, interval 0, interval 1 h)
//!            bits 5-6 segment files (0 to 3) | bit 7 keep the ack file's checksum as given
//! segment_bytes - (header + the appended payload): u16 | max_bytes / segment_bytes - 2: u8 (mod 6)
//! [ack: head u64, dropped u64 (, crc u32 if bit 7)] [reserved: mark u64]
//! per segment: first seq u64 (its file name), length u16 (the last takes the rest), bytes
//! ```
//!
//! With bit 0 the body rewrites each framed record's checksum to match, so that the fuzzer
//! reaches the paths behind a valid record (sequence order, seeking, appending after it); the
//! ack and reservation files get a valid checksum the same way.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_agent::telemetry::spool::{FsyncPolicy, Record, Spool, SpoolError, SpoolOptions, HEADER_BYTES};

const PAYLOAD: &[u8] = b"appended after the fuzz input";

/// A reader over the input that gives `None` once it runs out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    }
}

/// What the input says to put in the directory.
struct Layout {
    options: SpoolOptions,
    ack: Option<Vec<u8>>,
    reserved: Option<Vec<u8>>,
    segments: Vec<(u64, Vec<u8>)>,
}

fn layout(data: &[u8], dir: &Path) -> Option<Layout> {
    let mut input = Input(data);
    let flags = input.u8()?;
    // Room for the record the body appends after opening: a smaller segment refuses it
    // (TooLarge), rightly (the first libFuzzer run found the body asking for that).
    let segment_bytes = HEADER_BYTES + PAYLOAD.len() as u64 + u64::from(input.u16()?);
    let max_bytes = segment_bytes * (2 + u64::from(input.u8()? % 6));
    let fsync = match (flags >> 3) & 3 {
        0 => FsyncPolicy::Never,
        1 => FsyncPolicy::EveryRecord,
        2 => FsyncPolicy::Interval(Duration::ZERO),
        _ => FsyncPolicy::Interval(Duration::from_secs(3600)),
    };
    let ack = if flags & 2 != 0 {
        let mut bytes = Vec::with_capacity(20);
        bytes.extend_from_slice(&input.u64()?.to_le_bytes());
        bytes.extend_from_slice(&input.u64()?.to_le_bytes());
        let crc = if flags & 0x80 != 0 {
            input.u32()?
        } else {
            crc32fast::hash(&bytes)
        };
        bytes.extend_from_slice(&crc.to_le_bytes());
        Some(bytes)
    } else {
        None
    };
    let reserved = if flags & 4 != 0 {
        let mut bytes = input.u64()?.to_le_bytes().to_vec();
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        Some(bytes)
    } else {
        None
    };
    let count = usize::from((flags >> 5) & 3);
    let mut segments = Vec::with_capacity(count);
    for i in 0..count {
        let first = input.u64()?;
        let len = if i + 1 == count {
            input.0.len()
        } else {
            usize::from(input.u16()?).min(input.0.len())
        };
        let mut bytes = input.take(len)?.to_vec();
        if flags & 1 != 0 {
            fix_checksums(&mut bytes);
        }
        segments.push((first, bytes));
    }
    Some(Layout {
        options: SpoolOptions {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes,
            fsync,
        },
        ack,
        reserved,
        segments,
    })
}

/// Rewrites the checksum of every record framed in `bytes` to match its seq and payload.
fn fix_checksums(bytes: &mut [u8]) {
    let header = HEADER_BYTES as usize;
    let mut at = 0;
    while at + header <= bytes.len() {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let Some(end) = (at + header).checked_add(len).filter(|&e| e <= bytes.len()) else {
            break;
        };
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[at + 8..at + 16]);
        h.update(&bytes[at + header..end]);
        bytes[at + 4..at + 8].copy_from_slice(&h.finalize().to_le_bytes());
        at = end;
    }
}

fn read_all(spool: &mut Spool) -> Vec<Record> {
    let stats = spool.stats();
    let mut all: Vec<Record> = Vec::new();
    let mut from = 0;
    // Bounded: every round either ends or returns at least one record with a higher seq.
    for _ in 0..=stats.pending {
        let batch = spool
            .read(from, 64)
            .expect("a spool reads back what it opened");
        let Some(last) = batch.last() else { break };
        from = last
            .seq
            .checked_add(1)
            .expect("a record's seq leaves room for the next");
        all.extend(batch);
    }
    for pair in all.windows(2) {
        assert!(
            pair[0].seq < pair[1].seq,
            "records out of order: {} then {}",
            pair[0].seq,
            pair[1].seq
        );
    }
    for r in &all {
        assert!(
            r.seq >= stats.head && r.seq < stats.next_seq,
            "record {} outside [{}, {})",
            r.seq,
            stats.head,
            stats.next_seq
        );
        assert!(!r.payload.is_empty(), "an empty record read back");
    }
    assert!(
        all.len() as u64 <= stats.pending,
        "read {} records, {} pending",
        all.len(),
        stats.pending
    );
    all
}

/// The body, in a fresh scratch directory of its own.
pub fn run(data: &[u8]) {
    static N: AtomicU64 = AtomicU64::new(0);
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!(
        "ferry-fuzz-spool-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    run_in(data, &dir);
    let _ = fs::remove_dir_all(&dir);
}

/// The body, in `dir` (emptied first).
pub fn run_in(data: &[u8], dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("scratch directory");
    let Some(layout) = layout(data, dir) else {
        return;
    };
    for (first, bytes) in &layout.segments {
        fs::write(dir.join(format!("{first:020}.seg")), bytes).expect("write a segment");
    }
    if let Some(ack) = &layout.ack {
        fs::write(dir.join("ack"), ack).expect("write ack");
    }
    if let Some(reserved) = &layout.reserved {
        fs::write(dir.join("reserved"), reserved).expect("write reserved");
    }

    let mut spool =
        Spool::open(layout.options.clone()).expect("a spool opens whatever its files hold");
    let before = read_all(&mut spool);
    let next = spool.next_seq();
    let seq = match spool.append(PAYLOAD) {
        Ok(seq) => seq,
        // Files claiming the last seqs of the range: refused, never wrapped.
        Err(SpoolError::SeqExhausted { next, .. }) => {
            assert!(next.checked_add(1 + ferry_agent::telemetry::spool::RESERVED_SEQS).is_none(), "exhausted at {next}");
            return;
        }
        Err(e) => panic!("an append to an opened spool succeeds: {e:?}"),
    };
    assert!(
        seq >= next,
        "append gave {seq}, the spool said the next is {next}"
    );
    if let Some(last) = before.last() {
        assert!(
            seq > last.seq,
            "append gave {seq}, a record {} exists",
            last.seq
        );
    }
    let back = spool.read(seq, 1).expect("read the appended record");
    assert_eq!(
        back.first().map(|r| (r.seq, r.payload.as_slice())),
        Some((seq, PAYLOAD)),
        "the appended record reads back"
    );
    if let Some(last) = before.last() {
        spool.ack(last.seq).expect("ack what was read");
        assert!(
            spool.head() <= seq,
            "acknowledging older records passed the new one"
        );
    }
    drop(spool);

    let mut spool = Spool::open(layout.options).expect("a spool reopens after a clean close");
    assert!(
        spool.next_seq() > seq,
        "reopened at {}, {seq} was given already",
        spool.next_seq()
    );
    let back = spool.read(seq, 1).expect("read after reopening");
    assert_eq!(
        back.first().map(|r| (r.seq, r.payload.as_slice())),
        Some((seq, PAYLOAD)),
        "the appended record survives a clean close"
    );
    match spool.append(PAYLOAD) {
        Ok(again) => assert!(again > seq, "seq {again} given twice"),
        // The reopen moves past the numbers reserved ahead: near the end of the range that
        // may leave none, which is refused, never wrapped.
        Err(SpoolError::SeqExhausted { next, .. }) => assert!(next > seq, "exhausted at {next}, behind {seq}"),
        Err(e) => panic!("append after reopening: {e:?}"),
    }
}
