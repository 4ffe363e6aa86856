//! The on-disk write-ahead spool: every telemetry message is appended here before it is
//! published, and only forgotten after the broker acknowledged it.
//!
//! Layout: segment files `<first seq, 20 digits>.seg` in one directory, plus `ack` (the
//! delivery pointer and the drop counter) and, under [`FsyncPolicy::Interval`], `reserved`
//! (the sequence numbers that may have been handed out). A record is
//!
//! ```text
//! len: u32 LE | crc32: u32 LE (over seq and payload) | seq: u64 LE | payload: len bytes
//! ```
//!
//! Why this shape: a power cut can leave the last record of the last segment half written,
//! or (with delayed allocation) followed by zeros. Length framing plus a checksum over the
//! sequence number and payload finds the first record that is not whole; on open the
//! segment is truncated there, so a torn record is never delivered and the next append
//! starts on a clean boundary. Sequence numbers must follow each other within a segment,
//! which also catches stale bytes after a truncation.
//!
//! Bounded in bytes: when an append would take the files over `max_bytes`, whole oldest
//! segments are deleted first, and the records in them that were not yet delivered are
//! counted as dropped (the counter survives restarts, in `ack`).
//!
//! Delivery is at least once: the ack pointer is rewritten (without fsync) at every
//! advance, so after a SIGKILL nothing acknowledged is sent again, and after a power cut at
//! most the records acknowledged since the last fsync of `ack` are.
//!
//! A sequence number is never given twice, whatever a power cut keeps: downstream
//! de-duplicates on (device, seq), so a reused number would hide a new message behind an
//! old one. Under [`FsyncPolicy::Interval`] a power cut can lose records that were handed out
//! (and published, and acknowledged, with `ack` reaching the disk ahead of them); so before
//! handing out a number at or past the durable `reserved` mark, the spool moves the mark
//! [`RESERVED_SEQS`] ahead and fsyncs it, and on open it continues after the newest of the
//! records on disk, the ack pointer and that mark. Dropping the spool fsyncs the records and
//! brings the mark back, so only a crash or a power cut leaves a gap in the numbers.
//! A record is only ever written at the end of a segment whose records it continues: when
//! the next number does not follow the last record on disk (the records past it were lost),
//! a new segment starts at that number, where the next open does not take it for a torn tail.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes before a record's payload.
pub const HEADER_BYTES: u64 = 16;
const SEGMENT_SUFFIX: &str = ".seg";
const ACK_FILE: &str = "ack";
const ACK_TMP: &str = "ack.tmp";
const RESERVED_FILE: &str = "reserved";
const RESERVED_TMP: &str = "reserved.tmp";
/// Sequence numbers reserved (durably, in `reserved`) at a time under
/// [`FsyncPolicy::Interval`]: at most this many are skipped after a crash or power cut.
pub const RESERVED_SEQS: u64 = 1024;

/// When appended records are forced to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every record: nothing appended is lost in a power cut.
    EveryRecord,
    /// At most this long after a record was appended (checked on the next append and on
    /// [`Spool::sync_if_due`]): fewer writes to an SD card, a bounded window at risk.
    Interval(Duration),
    /// Never explicitly (the kernel writes back on its own); survives a crash of the
    /// process, not a power cut (after one, records are lost and their sequence numbers may
    /// be given again).
    Never,
}

/// How to open a spool.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// The directory holding the segment files (created if missing).
    pub dir: PathBuf,
    /// Upper bound on the bytes of all segment files together.
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// When to fsync.
    pub fsync: FsyncPolicy,
}

/// A spool that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// No sequence number is left: the spool's files claim one at the end of the range (only
    /// a corrupted or hostile spool directory does; it is not wrapped around, which would
    /// give numbers twice).
    #[error("spool {dir}: sequence numbers exhausted (its files claim seq {next}); move the spool directory away to start a new one")]
    SeqExhausted {
        /// The spool directory.
        dir: PathBuf,
        /// The next seq its files claim.
        next: u64,
    },
    /// A file operation failed.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The options cannot work.
    #[error("spool: {0}")]
    Options(&'static str),
    /// An empty record (the reader takes a zero length for a torn record).
    #[error("an empty record cannot be spooled")]
    Empty,
    /// A record larger than a segment.
    #[error("record of {size} bytes is larger than the largest record ({max} bytes)")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number (increasing; gaps where records were dropped or lost).
    pub seq: u64,
    /// What was appended.
    pub payload: Vec<u8>,
}

/// Counters and sizes, as read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpoolStats {
    /// Records waiting for delivery (appended, neither acknowledged nor dropped).
    pub pending: u64,
    /// Bytes of all segment files.
    pub bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// Records dropped because the spool was full, since the spool was created.
    pub dropped: u64,
    /// Bytes cut off torn or corrupt tails when this spool was opened.
    pub truncated_bytes: u64,
    /// The next sequence number to be appended.
    pub next_seq: u64,
    /// The oldest sequence number not yet acknowledged or dropped.
    pub head: u64,
}

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    /// One past the last record's seq (== first_seq when empty).
    next_seq: u64,
    /// Valid bytes (the file is never longer once opened).
    bytes: u64,
    path: PathBuf,
}

/// Where the next sequential read continues.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    segment_first_seq: u64,
    offset: u64,
    next_seq: u64,
}

/// The spool. Not internally synchronised: share it behind a mutex.
#[derive(Debug)]
pub struct Spool {
    options: SpoolOptions,
    segments: VecDeque<Segment>,
    /// Append handle of the last segment.
    active: Option<File>,
    next_seq: u64,
    head: u64,
    dropped: u64,
    truncated_bytes: u64,
    /// When the oldest record not yet fsynced was appended.
    unsynced_since: Option<Instant>,
    cursor: Option<Cursor>,
    /// Every seq below this may have been handed out (durable in `reserved`); 0 when no
    /// reservation was ever made.
    reserved: u64,
}

impl Spool {
    /// The largest payload one record can carry with these options.
    pub fn max_payload(options: &SpoolOptions) -> usize {
        usize::try_from(options.segment_bytes.saturating_sub(HEADER_BYTES)).unwrap_or(usize::MAX)
    }

    /// Opens (or creates) the spool in `options.dir`: reads the ack pointer, checks every
    /// record of every segment, truncates a torn or corrupt tail, deletes segments that are
    /// wholly delivered.
    pub fn open(options: SpoolOptions) -> Result<Spool, SpoolError> {
        if options.segment_bytes <= HEADER_BYTES + 16 {
            return Err(SpoolError::Options("segment_bytes must be more than 32"));
        }
        if options.max_bytes < options.segment_bytes.saturating_mul(2) {
            return Err(SpoolError::Options(
                "max_bytes must be at least 2 × segment_bytes",
            ));
        }
        fs::create_dir_all(&options.dir).map_err(io(&options.dir))?;
        let (mut head, dropped) = read_ack(&options.dir);
        let mut firsts = Vec::new();
        for entry in fs::read_dir(&options.dir).map_err(io(&options.dir))? {
            let entry = entry.map_err(io(&options.dir))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SEGMENT_SUFFIX)) else {
                continue;
            };
            match stem.parse::<u64>() {
                Ok(first) if stem.len() == 20 => firsts.push(first),
                _ => tracing::warn!(file = ?entry.path(), "ignoring a stray file in the spool"),
            }
        }
        firsts.sort_unstable();
        let mut segments = VecDeque::new();
        let mut truncated_bytes = 0;
        for first in firsts {
            let path = segment_path(&options.dir, first);
            // Segments follow each other: one that starts before the one before it ends was
            // not written in order by this spool (its numbers are taken). Kept, it would be
            // read back out of order and, empty, would set the next seq back to a number
            // already on disk. It is removed and counted as cut.
            if let Some(prev) = segments.back().filter(|p: &&Segment| first < p.next_seq) {
                let bytes = fs::metadata(&path).map_err(io(&path))?.len();
                tracing::warn!(path = %path.display(), starts = first, previous_ends = prev.next_seq, bytes, "removing a spool segment that overlaps the one before it");
                fs::remove_file(&path).map_err(io(&path))?;
                truncated_bytes += bytes;
                continue;
            }
            let (segment, cut) = check_segment(path, first)?;
            truncated_bytes += cut;
            segments.push_back(segment);
        }
        // A head behind the oldest record (its segment deleted before `ack` was rewritten)
        // is clamped. One ahead of the newest (ack written, records lost with a power cut),
        // or a reservation ahead of both (records handed out and lost), moves the next seq
        // past every number that may have been handed out; the next append then starts a
        // segment of its own there.
        let reserved = read_reserved(&options.dir);
        let last_next = segments.back().map_or(head, |s| s.next_seq);
        let next_seq = last_next.max(head).max(reserved);
        if let Some(front) = segments.front() {
            head = head.max(front.first_seq).min(next_seq);
        }
        let mut spool = Spool {
            options,
            segments,
            active: None,
            next_seq,
            head,
            dropped,
            truncated_bytes,
            unsynced_since: None,
            cursor: None,
            reserved,
        };
        spool.delete_delivered_segments()?;
        if let Some(last) = spool.segments.back() {
            let file = OpenOptions::new()
                .append(true)
                .open(&last.path)
                .map_err(io(&last.path))?;
            spool.active = Some(file);
        }
        if truncated_bytes > 0 {
            tracing::warn!(
                bytes = truncated_bytes,
                dir = %spool.options.dir.display(),
                "torn or corrupt spool tail truncated"
            );
        }
        Ok(spool)
    }

    /// The next sequence number [`append`](Self::append) will give.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The oldest sequence number not yet acknowledged or dropped.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Counters and sizes.
    pub fn stats(&self) -> SpoolStats {
        let pending = self
            .segments
            .iter()
            .map(|s| s.next_seq.saturating_sub(s.first_seq.max(self.head)))
            .sum();
        SpoolStats {
            pending,
            bytes: self.segments.iter().map(|s| s.bytes).sum(),
            segments: self.segments.len(),
            dropped: self.dropped,
            truncated_bytes: self.truncated_bytes,
            next_seq: self.next_seq,
            head: self.head,
        }
    }

    /// Appends one record and returns its sequence number. When this returns, the record
    /// is in the file (and on the disk, under [`FsyncPolicy::EveryRecord`]). An empty
    /// payload is refused ([`SpoolError::Empty`]).
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, SpoolError> {
        if payload.is_empty() {
            return Err(SpoolError::Empty);
        }
        let max = Self::max_payload(&self.options);
        if payload.len() > max {
            return Err(SpoolError::TooLarge {
                size: payload.len(),
                max,
            });
        }
        let size = HEADER_BYTES + payload.len() as u64;
        let needs_new = match self.segments.back() {
            None => true,
            // Full, or the next seq does not follow its last record (lost in a power cut):
            // written there, the record would be taken for a torn tail by the next open.
            Some(s) => {
                (s.bytes > 0 && s.bytes + size > self.options.segment_bytes)
                    || s.next_seq != self.next_seq
            }
        };
        if needs_new {
            self.rotate()?;
        }
        let seq = self.next_seq;
        // Room for this record's successor and a reservation ahead of it.
        if seq.checked_add(1 + RESERVED_SEQS).is_none() {
            return Err(SpoolError::SeqExhausted { dir: self.options.dir.clone(), next: seq });
        }
        self.make_room(size)?;
        if matches!(self.options.fsync, FsyncPolicy::Interval(_)) && seq >= self.reserved {
            self.write_reserved(seq + RESERVED_SEQS)?;
        }
        let mut record = Vec::with_capacity(size as usize);
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(seq, payload).to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(payload);
        let (Some(segment), Some(file)) = (self.segments.back_mut(), self.active.as_mut()) else {
            return Err(SpoolError::Options("no active segment"));
        };
        if let Err(e) = file.write_all(&record) {
            // Cut a partial write off again so the next append starts on a boundary.
            let _ = file.set_len(segment.bytes);
            return Err(io(&segment.path)(e));
        }
        segment.bytes += size;
        segment.next_seq = seq + 1;
        self.next_seq = seq + 1;
        match self.options.fsync {
            FsyncPolicy::EveryRecord => {
                file.sync_data().map_err(io(&segment.path))?;
            }
            FsyncPolicy::Interval(_) => {
                self.unsynced_since.get_or_insert_with(Instant::now);
                self.sync_if_due()?;
            }
            FsyncPolicy::Never => {}
        }
        Ok(seq)
    }

    /// Fsyncs the active segment if the interval policy says it is time.
    pub fn sync_if_due(&mut self) -> Result<(), SpoolError> {
        if let (FsyncPolicy::Interval(every), Some(since)) =
            (self.options.fsync, self.unsynced_since)
        {
            if since.elapsed() >= every {
                self.sync()?;
            }
        }
        Ok(())
    }

    /// Fsyncs the active segment now.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if let (Some(file), Some(segment)) = (self.active.as_ref(), self.segments.back()) {
            file.sync_data().map_err(io(&segment.path))?;
        }
        self.unsynced_since = None;
        Ok(())
    }

    /// Reads up to `max` records with `seq >= from`, oldest first (from the head if `from`
    /// is older than it).
    pub fn read(&mut self, from: u64, max: usize) -> Result<Vec<Record>, SpoolError> {
        let from = from.max(self.head);
        let mut out = Vec::new();
        let mut cursor = match self.cursor {
            Some(c) if c.next_seq == from => c,
            _ => match self.seek(from)? {
                Some(c) => c,
                None => return Ok(out),
            },
        };
        while out.len() < max {
            let Some(index) = self.segment_index(cursor.segment_first_seq) else {
                break;
            };
            let segment = &self.segments[index];
            if cursor.offset >= segment.bytes {
                // On to the next segment, if any.
                let Some(next) = self.segments.get(index + 1) else {
                    break;
                };
                cursor = Cursor {
                    segment_first_seq: next.first_seq,
                    offset: 0,
                    next_seq: next.first_seq,
                };
                continue;
            }
            let file = File::open(&segment.path).map_err(io(&segment.path))?;
            let Some((record, size)) =
                read_record(&file, cursor.offset, segment.bytes).map_err(io(&segment.path))?
            else {
                // Checked on open and only appended since: a record that no longer reads
                // back whole means the file changed under us. Stop here rather than
                // deliver it.
                tracing::error!(path = %segment.path.display(), offset = cursor.offset, "unreadable spool record");
                break;
            };
            cursor.offset += size;
            cursor.next_seq = record.seq + 1;
            if record.seq >= from {
                out.push(record);
            }
        }
        self.cursor = Some(cursor);
        Ok(out)
    }

    /// Marks every record up to and including `seq` delivered: moves the head, deletes
    /// segments that hold nothing undelivered, rewrites the ack file.
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        let new_head = seq.saturating_add(1).min(self.next_seq);
        if new_head <= self.head {
            return Ok(());
        }
        self.head = new_head;
        self.delete_delivered_segments()?;
        self.write_ack(false)
    }

    fn segment_index(&self, first_seq: u64) -> Option<usize> {
        self.segments.iter().position(|s| s.first_seq == first_seq)
    }

    /// A cursor on the first record with `seq >= from`, scanning its segment from the start.
    fn seek(&self, from: u64) -> Result<Option<Cursor>, SpoolError> {
        let Some(index) = self.segments.iter().rposition(|s| s.first_seq <= from).or(
            if self.segments.is_empty() {
                None
            } else {
                Some(0)
            },
        ) else {
            return Ok(None);
        };
        let segment = &self.segments[index];
        let mut cursor = Cursor {
            segment_first_seq: segment.first_seq,
            offset: 0,
            next_seq: segment.first_seq,
        };
        if from <= segment.first_seq {
            return Ok(Some(cursor));
        }
        let file = File::open(&segment.path).map_err(io(&segment.path))?;
        while cursor.offset < segment.bytes && cursor.next_seq < from {
            let mut header = [0u8; HEADER_BYTES as usize];
            file.read_exact_at(&mut header, cursor.offset)
                .map_err(io(&segment.path))?;
            let (len, _, seq) = parse_header(&header);
            if cursor.offset + HEADER_BYTES + u64::from(len) > segment.bytes {
                break;
            }
            cursor.offset += HEADER_BYTES + u64::from(len);
            cursor.next_seq = seq + 1;
        }
        Ok(Some(cursor))
    }

    /// Starts a new segment at `next_seq`.
    fn rotate(&mut self) -> Result<(), SpoolError> {
        if let Some(file) = self.active.take() {
            if self.options.fsync != FsyncPolicy::Never {
                if let Some(s) = self.segments.back() {
                    file.sync_data().map_err(io(&s.path))?;
                }
            }
        }
        // An empty last segment (torn first record) is reused rather than duplicated.
        if let Some(last) = self.segments.back() {
            if last.bytes == 0 {
                let path = last.path.clone();
                self.segments.pop_back();
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        let path = segment_path(&self.options.dir, self.next_seq);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        // A leftover file of that name (never expected) must not be appended to.
        file.set_len(0).map_err(io(&path))?;
        if self.options.fsync != FsyncPolicy::Never {
            sync_dir(&self.options.dir)?;
        }
        self.segments.push_back(Segment {
            first_seq: self.next_seq,
            next_seq: self.next_seq,
            bytes: 0,
            path,
        });
        self.active = Some(file);
        Ok(())
    }

    /// Deletes oldest segments (never the active one) until `size` more bytes fit.
    fn make_room(&mut self, size: u64) -> Result<(), SpoolError> {
        let mut dropped_now = 0;
        while self.segments.len() > 1
            && self.segments.iter().map(|s| s.bytes).sum::<u64>() + size > self.options.max_bytes
        {
            let Some(oldest) = self.segments.pop_front() else {
                break;
            };
            let undelivered = oldest
                .next_seq
                .saturating_sub(oldest.first_seq.max(self.head));
            dropped_now += undelivered;
            self.head = self.head.max(oldest.next_seq);
            if self
                .cursor
                .is_some_and(|c| c.segment_first_seq == oldest.first_seq)
            {
                self.cursor = None;
            }
            fs::remove_file(&oldest.path).map_err(io(&oldest.path))?;
        }
        if dropped_now > 0 {
            self.dropped += dropped_now;
            tracing::warn!(
                dropped = dropped_now,
                total_dropped = self.dropped,
                "telemetry spool full: oldest records dropped"
            );
            self.write_ack(true)?;
        }
        Ok(())
    }

    fn delete_delivered_segments(&mut self) -> Result<(), SpoolError> {
        while self.segments.len() > 1 {
            let Some(front) = self.segments.front() else {
                break;
            };
            if front.next_seq > self.head {
                break;
            }
            if self
                .cursor
                .is_some_and(|c| c.segment_first_seq == front.first_seq)
            {
                self.cursor = None;
            }
            fs::remove_file(&front.path).map_err(io(&front.path))?;
            self.segments.pop_front();
        }
        Ok(())
    }

    /// Rewrites `ack` atomically (temp file + rename): head, dropped, checksum.
    fn write_ack(&self, durable: bool) -> Result<(), SpoolError> {
        let tmp = self.options.dir.join(ACK_TMP);
        let mut bytes = [0u8; 20];
        bytes[..8].copy_from_slice(&self.head.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.dropped.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..16]);
        bytes[16..].copy_from_slice(&crc.to_le_bytes());
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        if durable && self.options.fsync != FsyncPolicy::Never {
            file.sync_data().map_err(io(&tmp))?;
        }
        let dest = self.options.dir.join(ACK_FILE);
        fs::rename(&tmp, &dest).map_err(io(&dest))?;
        Ok(())
    }
}

impl Spool {
    /// Moves the durable reservation mark to `mark` (temp file, fsync, rename, fsync of the
    /// directory: on the disk before a seq below it is handed out).
    fn write_reserved(&mut self, mark: u64) -> Result<(), SpoolError> {
        let tmp = self.options.dir.join(RESERVED_TMP);
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&mark.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..8]);
        bytes[8..].copy_from_slice(&crc.to_le_bytes());
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_data().map_err(io(&tmp))?;
        let dest = self.options.dir.join(RESERVED_FILE);
        fs::rename(&tmp, &dest).map_err(io(&dest))?;
        sync_dir(&self.options.dir)?;
        self.reserved = mark;
        Ok(())
    }
}

impl Drop for Spool {
    /// A clean close under [`FsyncPolicy::Interval`]: fsyncs what is appended and brings the
    /// reservation back to the next seq, so that the next open continues without a gap.
    /// Best effort: if either step fails, the mark stays ahead (a gap, never a reuse).
    fn drop(&mut self) {
        if !matches!(self.options.fsync, FsyncPolicy::Interval(_)) || self.reserved <= self.next_seq
        {
            return;
        }
        let result = self
            .sync()
            .and_then(|()| self.write_reserved(self.next_seq));
        if let Err(e) = result {
            tracing::warn!(error = %e, "telemetry spool: closing without bringing the reservation back");
        }
    }
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn parse_header(h: &[u8; HEADER_BYTES as usize]) -> (u32, u32, u64) {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let seq = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    (len, crc, seq)
}

/// Reads the record at `offset` if it lies whole within `end` and its checksum matches.
/// Bounded by `end`, not by the options' record limit: a record written under a larger
/// `segment_bytes` still reads back whole after the limit was lowered.
fn read_record(file: &File, offset: u64, end: u64) -> std::io::Result<Option<(Record, u64)>> {
    if offset + HEADER_BYTES > end {
        return Ok(None);
    }
    let mut header = [0u8; HEADER_BYTES as usize];
    file.read_exact_at(&mut header, offset)?;
    let (len, crc, seq) = parse_header(&header);
    let len = u64::from(len);
    if len == 0 || offset + HEADER_BYTES + len > end {
        return Ok(None);
    }
    let mut payload = vec![0u8; len as usize];
    file.read_exact_at(&mut payload, offset + HEADER_BYTES)?;
    if checksum(seq, &payload) != crc {
        return Ok(None);
    }
    Ok(Some((Record { seq, payload }, HEADER_BYTES + len)))
}

/// Checks every record of a segment; truncates the file at the first one that is not
/// whole, not intact or out of sequence. Returns the segment and the bytes cut off.
fn check_segment(path: PathBuf, first_seq: u64) -> Result<(Segment, u64), SpoolError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    let len = file.metadata().map_err(io(&path))?.len();
    let mut offset = 0;
    let mut next_seq = first_seq;
    while let Some((record, size)) = read_record(&file, offset, len).map_err(io(&path))? {
        // The last seq of the range has no successor: no spool writes it (`append` refuses
        // before), so a record claiming it is cut like any record out of sequence, and every
        // record kept has a `seq + 1`.
        if record.seq != next_seq || next_seq == u64::MAX {
            break;
        }
        offset += size;
        next_seq += 1;
    }
    let cut = len - offset;
    if cut > 0 {
        tracing::warn!(path = %path.display(), offset, bytes = cut, "truncating a torn or corrupt spool tail");
        file.set_len(offset).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
    }
    Ok((
        Segment {
            first_seq,
            next_seq,
            bytes: offset,
            path,
        },
        cut,
    ))
}

/// The ack file's head and dropped count; zeros if missing or unreadable (at worst,
/// delivered records are sent again).
fn read_ack(dir: &Path) -> (u64, u64) {
    let path = dir.join(ACK_FILE);
    let Ok(bytes) = fs::read(&path) else {
        return (0, 0);
    };
    let Ok(bytes) = <[u8; 20]>::try_from(bytes.as_slice()) else {
        tracing::warn!(path = %path.display(), "ack file of the wrong size ignored");
        return (0, 0);
    };
    let crc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    if crc32fast::hash(&bytes[..16]) != crc {
        tracing::warn!(path = %path.display(), "ack file with a bad checksum ignored");
        return (0, 0);
    }
    let mut head = [0u8; 8];
    head.copy_from_slice(&bytes[..8]);
    let mut dropped = [0u8; 8];
    dropped.copy_from_slice(&bytes[8..16]);
    (u64::from_le_bytes(head), u64::from_le_bytes(dropped))
}

/// The durable reservation mark; 0 if there is none (a spool that never reserved, or one
/// written by an older version) or it is unreadable.
fn read_reserved(dir: &Path) -> u64 {
    let path = dir.join(RESERVED_FILE);
    let Ok(bytes) = fs::read(&path) else {
        return 0;
    };
    let Ok(bytes) = <[u8; 12]>::try_from(bytes.as_slice()) else {
        tracing::warn!(path = %path.display(), "reservation file of the wrong size ignored");
        return 0;
    };
    let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if crc32fast::hash(&bytes[..8]) != crc {
        tracing::warn!(path = %path.display(), "reservation file with a bad checksum ignored");
        return 0;
    }
    let mut mark = [0u8; 8];
    mark.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path, max_bytes: u64, segment_bytes: u64) -> SpoolOptions {
        SpoolOptions {
            dir: dir.to_owned(),
            max_bytes,
            segment_bytes,
            fsync: FsyncPolicy::EveryRecord,
        }
    }

    fn payloads(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8(r.payload.clone()).unwrap())
            .collect()
    }

    /// Found with the `spool` fuzz body (input kept as
    /// fuzz/regressions/spool/overlapping-empty-segment, one byte from a seed): an empty
    /// segment named inside the range of the one before it set the next seq back to a number
    /// already on disk, and records were read back out of order.
    #[test]
    fn a_segment_starting_inside_the_one_before_is_removed_and_no_seq_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 4096)).unwrap();
        for i in 0..10 {
            s.append(format!("m{i}").as_bytes()).unwrap();
        }
        drop(s);
        let stray = segment_path(dir.path(), 3);
        fs::write(&stray, b"").unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 4096)).unwrap();
        assert!(!stray.exists(), "the overlapping segment is removed");
        assert_eq!(s.next_seq(), 10);
        let all = s.read(0, 100).unwrap();
        assert_eq!(
            all.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(s.append(b"after").unwrap(), 10);
    }

    #[test]
    fn records_read_back_in_order_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 256)).unwrap();
        for i in 0..50 {
            assert_eq!(s.append(format!("m{i}").as_bytes()).unwrap(), i);
        }
        assert!(s.stats().segments > 1, "rotated: {:?}", s.stats());
        let first = s.read(0, 10).unwrap();
        assert_eq!(payloads(&first)[..3], ["m0", "m1", "m2"]);
        drop(s);
        let mut s = Spool::open(options(dir.path(), 1 << 20, 256)).unwrap();
        let all = s.read(0, 1000).unwrap();
        assert_eq!(all.len(), 50);
        assert!(all.iter().enumerate().all(|(i, r)| r.seq == i as u64));
        assert_eq!(s.next_seq(), 50);
    }

    #[test]
    fn acked_records_are_not_read_again_after_reopening_and_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 256)).unwrap();
        for i in 0..50 {
            s.append(format!("m{i}").as_bytes()).unwrap();
        }
        let segments = s.stats().segments;
        s.ack(39).unwrap();
        assert!(s.stats().segments < segments);
        assert_eq!(s.stats().pending, 10);
        drop(s);
        let mut s = Spool::open(options(dir.path(), 1 << 20, 256)).unwrap();
        let rest = s.read(0, 1000).unwrap();
        assert_eq!(rest.first().map(|r| r.seq), Some(40));
        assert_eq!(rest.len(), 10);
        assert_eq!(s.append(b"after").unwrap(), 50);
    }

    #[test]
    fn a_full_spool_drops_the_oldest_records_first_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        // 100-byte payloads: 116 bytes a record, 2 per 256-byte segment, 4 segments max.
        let mut s = Spool::open(options(dir.path(), 1024, 256)).unwrap();
        let payload = [b'x'; 100];
        for _ in 0..20 {
            s.append(&payload).unwrap();
        }
        let stats = s.stats();
        assert!(stats.bytes <= 1024, "{stats:?}");
        assert!(stats.dropped > 0, "{stats:?}");
        assert_eq!(stats.dropped + stats.pending, 20, "{stats:?}");
        let left = s.read(0, 100).unwrap();
        // What is left is the newest, contiguous, ending at the last append.
        assert_eq!(left.last().map(|r| r.seq), Some(19));
        assert_eq!(left.first().map(|r| r.seq), Some(stats.dropped));
        drop(s);
        let s = Spool::open(options(dir.path(), 1024, 256)).unwrap();
        assert_eq!(
            s.stats().dropped,
            stats.dropped,
            "the count survives a restart"
        );
    }

    #[test]
    fn a_torn_tail_is_truncated_on_open_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 4096)).unwrap();
        for i in 0..5 {
            s.append(format!("record {i}").as_bytes()).unwrap();
        }
        drop(s);
        let seg = segment_path(dir.path(), 0);
        let full = fs::metadata(&seg).unwrap().len();
        // The last record loses its last 3 bytes, as in a power cut mid-write.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(full - 3)
            .unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 4096)).unwrap();
        assert!(s.stats().truncated_bytes > 0);
        let read = s.read(0, 100).unwrap();
        assert_eq!(
            payloads(&read),
            ["record 0", "record 1", "record 2", "record 3"]
        );
        // The next append continues cleanly where the torn one was.
        assert_eq!(s.append(b"record 4 again").unwrap(), 4);
        drop(s);
        let mut s = Spool::open(options(dir.path(), 1 << 20, 4096)).unwrap();
        assert_eq!(s.stats().truncated_bytes, 0);
        assert_eq!(s.read(0, 100).unwrap().len(), 5);
    }

    #[test]
    fn a_corrupt_last_record_and_trailing_garbage_are_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 4096)).unwrap();
        for i in 0..3 {
            s.append(format!("record {i}").as_bytes()).unwrap();
        }
        drop(s);
        let seg = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&seg).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff; // a flipped bit in the last payload
        bytes.extend_from_slice(&[0u8; 40]); // zeros after it, as delayed allocation leaves
        fs::write(&seg, &bytes).unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 4096)).unwrap();
        assert_eq!(payloads(&s.read(0, 100).unwrap()), ["record 0", "record 1"]);
        assert_eq!(s.stats().truncated_bytes, 40 + HEADER_BYTES + 8);
    }

    #[test]
    fn reading_from_the_middle_of_a_segment_skips_earlier_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 256)).unwrap();
        for i in 0..40 {
            s.append(format!("m{i}").as_bytes()).unwrap();
        }
        let r = s.read(17, 3).unwrap();
        assert_eq!(r.iter().map(|r| r.seq).collect::<Vec<_>>(), [17, 18, 19]);
        let r = s.read(20, 1).unwrap();
        assert_eq!(r[0].seq, 20);
        let r = s.read(5, 1).unwrap();
        assert_eq!(r[0].seq, 5);
    }

    /// The length of every segment file now: what an fsync at this moment covers.
    fn synced_lengths(dir: &Path) -> std::collections::BTreeMap<PathBuf, u64> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .map(|p| {
                let len = fs::metadata(&p).unwrap().len();
                (p, len)
            })
            .collect()
    }

    /// A power cut that loses the page cache: every segment file goes back to what the last
    /// fsync covered (`synced`), and one created since keeps its (fsynced) directory entry
    /// but none of its bytes. `ack` and `reserved` stay as they are: the worst case, an
    /// `ack` that reached the disk ahead of the records it acknowledges.
    fn lose_the_page_cache(dir: &Path, synced: &std::collections::BTreeMap<PathBuf, u64>) {
        for (path, len) in synced_lengths(dir) {
            let keep = synced.get(&path).copied().unwrap_or(0).min(len);
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(keep)
                .unwrap();
        }
    }

    fn interval(dir: &Path, segment_bytes: u64) -> SpoolOptions {
        SpoolOptions {
            // Never due by itself: only the test's explicit sync() reaches the disk.
            fsync: FsyncPolicy::Interval(Duration::from_secs(3600)),
            ..options(dir, 1 << 20, segment_bytes)
        }
    }

    /// Appends `n` records, recording which seq each payload got; panics on a seq handed out
    /// twice.
    fn append_n(
        s: &mut Spool,
        n: usize,
        tag: &str,
        given: &mut std::collections::BTreeMap<u64, String>,
    ) {
        for i in 0..n {
            let payload = format!("{tag}{i}");
            let seq = s.append(payload.as_bytes()).unwrap();
            if let Some(before) = given.insert(seq, payload.clone()) {
                panic!("seq {seq} handed out twice: {before:?}, then {payload:?}");
            }
        }
    }

    /// 20 records fsynced, 10 more handed out and acknowledged up to `acked` but never
    /// fsynced, the power cut with `ack` on the disk; then two more runs.
    fn power_cut_with_the_ack_ahead(segment_bytes: u64, acked: u64) {
        let scenario = format!("segments of {segment_bytes} bytes, acknowledged up to {acked}");
        let dir = tempfile::tempdir().unwrap();
        let mut given = std::collections::BTreeMap::new();
        let mut s = Spool::open(interval(dir.path(), segment_bytes)).unwrap();
        append_n(&mut s, 20, "before-sync-", &mut given);
        s.sync().unwrap();
        let synced = synced_lengths(dir.path());
        append_n(&mut s, 10, "unsynced-", &mut given);
        s.ack(acked).unwrap();
        std::mem::forget(s); // the power goes: no destructor runs
        lose_the_page_cache(dir.path(), &synced);

        let mut s = Spool::open(interval(dir.path(), segment_bytes)).unwrap();
        assert!(
            s.next_seq() >= 30,
            "{scenario}: a seq handed out before the cut would be reissued: {:?}",
            s.stats()
        );
        append_n(&mut s, 15, "after-reopen-", &mut given);
        s.sync().unwrap();
        let committed: Vec<u64> = given.keys().copied().filter(|seq| *seq >= 30).collect();
        drop(s);

        let mut s = Spool::open(interval(dir.path(), segment_bytes)).unwrap();
        let read = s.read(0, 1000).unwrap();
        assert_eq!(
            read.iter().map(|r| r.seq).collect::<Vec<_>>(),
            committed,
            "{scenario}: records appended after the cut and fsynced were lost: {:?}",
            s.stats()
        );
        assert_eq!(s.stats().truncated_bytes, 0, "{scenario}: {:?}", s.stats());
        for r in &read {
            let payload = String::from_utf8(r.payload.clone()).unwrap();
            assert_eq!(
                Some(&payload),
                given.get(&r.seq),
                "{scenario}: seq {}",
                r.seq
            );
        }
        append_n(&mut s, 5, "third-run-", &mut given);
    }

    #[test]
    fn after_a_power_cut_with_the_ack_ahead_nothing_committed_is_lost_and_no_seq_is_reused() {
        // Everything handed out acknowledged: the next record used to go into the old
        // segment after a gap, and the next open cut it off as a torn tail.
        power_cut_with_the_ack_ahead(4096, 29);
        // Two handed out and not acknowledged: their seqs used to be given again.
        power_cut_with_the_ack_ahead(4096, 27);
        // The same across segments (the unsynced ones in a segment of their own).
        power_cut_with_the_ack_ahead(256, 27);
        power_cut_with_the_ack_ahead(256, 29);
    }

    #[test]
    fn after_a_power_cut_the_lost_unacknowledged_seqs_are_not_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let mut given = std::collections::BTreeMap::new();
        let mut s = Spool::open(interval(dir.path(), 256)).unwrap();
        append_n(&mut s, 12, "synced-", &mut given);
        s.ack(3).unwrap();
        s.sync().unwrap();
        let synced = synced_lengths(dir.path());
        // Possibly published before the cut: their seqs must stay theirs.
        append_n(&mut s, 9, "lost-", &mut given);
        std::mem::forget(s);
        lose_the_page_cache(dir.path(), &synced);

        let mut s = Spool::open(interval(dir.path(), 256)).unwrap();
        let read = s.read(0, 1000).unwrap();
        assert_eq!(
            read.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (4..12).collect::<Vec<_>>()
        );
        append_n(&mut s, 6, "new-", &mut given);
        s.sync().unwrap();
        drop(s);
        let mut s = Spool::open(interval(dir.path(), 256)).unwrap();
        assert_eq!(s.stats().truncated_bytes, 0);
        let read = s.read(0, 1000).unwrap();
        assert_eq!(read.len(), 8 + 6, "{:?}", s.stats());
        for r in &read {
            assert_eq!(
                Some(&String::from_utf8(r.payload.clone()).unwrap()),
                given.get(&r.seq),
                "seq {}",
                r.seq
            );
        }
    }

    #[test]
    fn a_clean_close_with_interval_fsync_leaves_no_gap_and_a_crash_no_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(interval(dir.path(), 256)).unwrap();
        for i in 0..5 {
            assert_eq!(s.append(format!("m{i}").as_bytes()).unwrap(), i);
        }
        drop(s);
        let mut s = Spool::open(interval(dir.path(), 256)).unwrap();
        assert_eq!(s.append(b"m5").unwrap(), 5, "a clean close loses no seq");
        std::mem::forget(s); // SIGKILL: the page cache keeps everything, no destructor runs
        let mut s = Spool::open(interval(dir.path(), 256)).unwrap();
        assert_eq!(s.read(0, 100).unwrap().len(), 6);
        let seq = s.append(b"m6").unwrap();
        assert!((6..=6 + RESERVED_SEQS).contains(&seq), "{seq}");
    }

    #[test]
    fn records_written_under_a_larger_segment_size_survive_reopening_with_a_smaller_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 4096)).unwrap();
        s.append(&[b'a'; 1000]).unwrap();
        s.append(&[b'b'; 2000]).unwrap();
        drop(s);
        let mut s = Spool::open(options(dir.path(), 1 << 20, 256)).unwrap();
        assert_eq!(
            s.stats().truncated_bytes,
            0,
            "committed records cut: {:?}",
            s.stats()
        );
        let read = s.read(0, 10).unwrap();
        assert_eq!(
            read.iter().map(|r| r.payload.len()).collect::<Vec<_>>(),
            [1000, 2000]
        );
        assert_eq!(s.append(b"small").unwrap(), 2);
        assert_eq!(s.read(1, 10).unwrap().len(), 2);
    }

    #[test]
    fn an_empty_payload_is_refused_and_the_spool_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(options(dir.path(), 1 << 20, 4096)).unwrap();
        s.append(b"one").unwrap();
        assert!(matches!(s.append(b""), Err(SpoolError::Empty)));
        s.append(b"two").unwrap();
        drop(s);
        let mut s = Spool::open(options(dir.path(), 1 << 20, 4096)).unwrap();
        assert_eq!(s.stats().truncated_bytes, 0);
        assert_eq!(payloads(&s.read(0, 10).unwrap()), ["one", "two"]);
    }

    #[test]
    fn options_that_cannot_work_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Spool::open(options(dir.path(), 300, 256)).is_err());
        let mut s = Spool::open(options(dir.path(), 1024, 256)).unwrap();
        assert!(matches!(
            s.append(&[0u8; 300]),
            Err(SpoolError::TooLarge { .. })
        ));
    }

    /// Found by the `spool` fuzzer (fuzz/regressions/spool/seq-at-the-end-of-the-range): a
    /// segment named with a seq at the end of the u64 range made the append overflow (a panic
    /// with overflow checks, a wrap to seq 0 without).
    #[test]
    fn a_spool_whose_files_claim_the_last_seqs_refuses_to_append_instead_of_wrapping() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(options(dir.path(), 4096, 1024)).unwrap();
        s.append(b"first").unwrap();
        drop(s);
        let seg = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|x| x == "seg")).unwrap();
        // Rewrite the one record as seq u64::MAX - 1 in a segment of that name.
        let payload = b"first";
        let seq = u64::MAX - 1;
        let mut record = Vec::new();
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(seq, payload).to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(payload);
        std::fs::remove_file(&seg).unwrap();
        std::fs::write(dir.path().join(format!("{seq:020}.seg")), &record).unwrap();
        let mut s = Spool::open(options(dir.path(), 4096, 1024)).unwrap();
        let err = s.append(b"next").unwrap_err();
        assert!(matches!(err, SpoolError::SeqExhausted { .. }), "{err}");
        assert!(err.to_string().contains("sequence numbers exhausted"), "{err}");
        drop(s);

        // Found next by the same fuzzer (fuzz/regressions/spool/record-with-the-last-seq): a
        // record claiming seq u64::MAX itself made the open overflow counting past it. It is
        // cut as out of range.
        let seq = u64::MAX;
        let mut record = Vec::new();
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(seq, payload).to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(payload);
        for e in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        std::fs::write(dir.path().join(format!("{seq:020}.seg")), &record).unwrap();
        let mut s = Spool::open(options(dir.path(), 4096, 1024)).unwrap();
        assert_eq!(s.stats().pending, 0);
        assert!(s.read(0, 10).unwrap().is_empty());
    }
}