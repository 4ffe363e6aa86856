//! Recorded links: the two formats this field replays, parsed into one capacity series.
//!
//! - **cooked** (Pensieve's format): one line per step, `time_s throughput_Mbit/s`, separated by
//!   tabs or spaces. Steps may have any length; each value holds from its timestamp until the
//!   next one, and the last one for as long as the step before it. The recording starts at its
//!   first timestamp.
//! - **Mahimahi** (`mm-link`): one integer per line, the millisecond from the trace start at
//!   which one 1500-byte packet may cross the link; a value repeated means several packets in
//!   that millisecond. The last timestamp is the period: as `mm-link` does, the schedule then
//!   starts again, shifted by it.
//!
//! Both become a [`Recording`]: a piecewise-constant capacity in Mbit/s that loops, sampled by
//! [`Recording::sample`] onto the simulator's steps (the mean capacity over each step).
//!
//! Parsing is total and bounded: any bad line is a [`RecordedError`] naming the file and the line,
//! files are capped at [`MAX_BYTES`] and [`MAX_LINES`], times at [`MAX_TIME_S`].

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest recording read, bytes: a Mahimahi file takes ~8 bytes per packet, so this holds
/// about 2 million packets (40 min of a 10 Mbit/s link), well past the few-minute cellular
/// recordings these files usually are; the cap keeps a wrong path (a disk image, /dev/zero)
/// from eating memory.
pub const MAX_BYTES: u64 = 16 << 20;
/// Most lines read (blank lines included).
pub const MAX_LINES: usize = 2_000_000;
/// Latest timestamp accepted, s (a week): keeps every time in µs far inside `u64`.
pub const MAX_TIME_S: u64 = 7 * 24 * 3600;
/// Bits one Mahimahi delivery opportunity carries: one 1500-byte packet.
const PACKET_BITS: u64 = 1500 * 8;
/// The length a one-line cooked log holds its value for before looping (it is constant
/// anyway), µs.
const ONE_STEP_US: u64 = 1_000_000;

/// A recording's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `time_s throughput_Mbit/s` lines.
    Cooked,
    /// One millisecond timestamp per 1500-byte delivery opportunity.
    Mahimahi,
}

impl Format {
    /// The format a file's extension names: `.log`/`.txt` cooked, `.up`/`.down` Mahimahi
    /// (the names `mm-link` users give their uplink and downlink files).
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "log" | "txt" => Some(Format::Cooked),
            "up" | "down" => Some(Format::Mahimahi),
            _ => None,
        }
    }
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// A cooked line without exactly two fields.
    #[error("expected `time_s throughput_Mbit/s`, found {0} field(s)")]
    Fields(usize),
    /// A field that is not a finite number.
    #[error("`{0}` is not a number")]
    NotANumber(String),
    /// A Mahimahi line that is not a whole number of milliseconds.
    #[error("`{0}` is not a whole number of milliseconds")]
    NotAnInteger(String),
    /// A time before the trace start.
    #[error("negative time `{0}`")]
    NegativeTime(String),
    /// A negative throughput.
    #[error("negative throughput `{0}`")]
    NegativeRate(String),
    /// A time past [`MAX_TIME_S`].
    #[error("time `{0}` is past the limit of {MAX_TIME_S} s")]
    TimeTooLarge(String),
    /// A time earlier than the line before's.
    #[error("time `{this}` is before the previous line's `{prev}`")]
    Decreasing {
        /// The previous line's time, as written.
        prev: String,
        /// This line's.
        this: String,
    },
    /// A cooked time equal to the line before's: a step of no length.
    #[error("time `{0}` repeats the previous line's (a cooked step needs a length)")]
    Repeated(String),
}

/// A recording that cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum RecordedError {
    /// The file could not be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Larger than the cap.
    #[error("{}: larger than {max} bytes", file.display())]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// The cap.
        max: u64,
    },
    /// More lines than the cap.
    #[error("{}: more than {max} lines", file.display())]
    TooManyLines {
        /// The file.
        file: PathBuf,
        /// The cap.
        max: usize,
    },
    /// Not UTF-8 text.
    #[error("{}: not UTF-8 text", file.display())]
    NotText {
        /// The file.
        file: PathBuf,
    },
    /// No samples at all.
    #[error("{}: no samples", file.display())]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// A Mahimahi schedule whose last timestamp is 0: it would loop without time passing.
    #[error("{}: the last timestamp is 0 ms (a Mahimahi trace loops at its last timestamp)", file.display())]
    ZeroLength {
        /// The file.
        file: PathBuf,
    },
    /// No `format` given and the extension names none.
    #[error("{}: unknown format (give `format = \"cooked\"` or `\"mahimahi\"`, or name it .log/.txt/.up/.down)", file.display())]
    UnknownFormat {
        /// The file.
        file: PathBuf,
    },
    /// A bad line.
    #[error("{}:{line}: {kind}", file.display())]
    Line {
        /// The file.
        file: PathBuf,
        /// 1-based.
        line: usize,
        /// What is wrong.
        kind: LineError,
    },
}

/// A recorded capacity: piecewise constant over `[0, end_us)`, then looping over
/// `[loop_from_us, end_us)` for ever.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// `(start µs, Mbit/s)`, starts increasing from 0, adjacent values distinct.
    segments: Vec<(u64, f64)>,
    /// Where the loop restarts, µs (0 for cooked logs; 1 ms for Mahimahi, whose first
    /// millisecond lacks the deliveries of the previous period's last one).
    loop_from_us: u64,
    /// End of the first pass, µs (> `loop_from_us`).
    end_us: u64,
}

impl Recording {
    /// The first pass's length, µs.
    pub fn duration_us(&self) -> u64 {
        self.end_us
    }

    /// The mean capacity over one loop, Mbit/s.
    pub fn mean_mbps(&self) -> f64 {
        let span = self.end_us - self.loop_from_us;
        self.mean_over(self.loop_from_us, span)
    }

    /// The mean capacity over each of `n` steps of `step_us` from time 0, Mbit/s.
    pub fn sample(&self, step_us: u64, n: usize) -> Vec<f64> {
        let step = step_us.max(1);
        (0..n as u64).map(|i| self.mean_over(i.saturating_mul(step), step)).collect()
    }

    /// Time `t_us` folded into the first pass.
    fn fold(&self, t_us: u64) -> u64 {
        if t_us < self.end_us {
            t_us
        } else {
            self.loop_from_us + (t_us - self.loop_from_us) % (self.end_us - self.loop_from_us)
        }
    }

    /// The segment in force at first-pass time `t`: its value and its end.
    fn segment_at(&self, t: u64) -> (f64, u64) {
        let i = self.segments.partition_point(|&(start, _)| start <= t).saturating_sub(1);
        let value = self.segments.get(i).map_or(0.0, |s| s.1);
        let end = self.segments.get(i + 1).map_or(self.end_us, |s| s.0);
        // The loop restarts inside a segment that spans `loop_from_us`: from `end_us`, time
        // jumps back, so that segment ends there.
        (value, end.min(self.end_us))
    }

    /// The mean over `[t0, t0 + span)`, Mbit/s: a step inside one segment gets its value
    /// exactly (no rounding through a weighted sum), so a constant recording replays as that
    /// constant.
    fn mean_over(&self, t0: u64, span: u64) -> f64 {
        let (mut t, stop) = (t0, t0.saturating_add(span));
        let mut bits = 0.0;
        // Bounded by the number of segments crossed; one step crosses at most all of them
        // once per loop.
        while t < stop {
            let f = self.fold(t);
            let (value, end) = self.segment_at(f);
            let piece = (end - f).max(1).min(stop - t);
            if piece == span {
                return value;
            }
            bits += value * piece as f64;
            t += piece;
        }
        bits / span.max(1) as f64
    }

    /// Merges adjacent equal values (so a step inside a run of equal values is exact).
    fn from_segments(raw: Vec<(u64, f64)>, loop_from_us: u64, end_us: u64) -> Recording {
        let mut segments: Vec<(u64, f64)> = Vec::with_capacity(raw.len());
        for (start, v) in raw {
            match segments.last() {
                Some(&(_, last)) if last == v => {}
                _ => segments.push((start, v)),
            }
        }
        Recording { segments, loop_from_us, end_us }
    }
}

/// Reads at most `max` bytes of UTF-8 text.
pub(crate) fn read_capped(path: &Path, max: u64) -> Result<String, RecordedError> {
    let io = |source| RecordedError::Io { file: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    // One byte past the cap tells a file at the cap from a larger one.
    file.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(RecordedError::TooLarge { file: path.to_owned(), max });
    }
    String::from_utf8(bytes).map_err(|_| RecordedError::NotText { file: path.to_owned() })
}

/// Reads and parses a recording; `format` `None` takes it from the extension.
pub fn load(path: &Path, format: Option<Format>) -> Result<Recording, RecordedError> {
    let format = format.or_else(|| Format::of_path(path)).ok_or_else(|| RecordedError::UnknownFormat { file: path.to_owned() })?;
    let text = read_capped(path, MAX_BYTES)?;
    parse(&text, format, path)
}

/// Parses a recording's text; `file` names it in errors.
pub fn parse(text: &str, format: Format, file: &Path) -> Result<Recording, RecordedError> {
    if text.len() as u64 > MAX_BYTES {
        return Err(RecordedError::TooLarge { file: file.to_owned(), max: MAX_BYTES });
    }
    match format {
        Format::Cooked => parse_cooked(text, file),
        Format::Mahimahi => parse_mahimahi(text, file),
    }
}

/// A field shortened for an error message (a garbage line can be a megabyte long).
fn snippet(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The non-blank lines, numbered from 1, with the line cap applied.
fn lines<'a>(text: &'a str, file: &'a Path) -> impl Iterator<Item = Result<(usize, &'a str), RecordedError>> + 'a {
    text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(move |(i, l)| {
        if i >= MAX_LINES {
            Err(RecordedError::TooManyLines { file: file.to_owned(), max: MAX_LINES })
        } else {
            Ok((i + 1, l.trim()))
        }
    })
}

fn parse_cooked(text: &str, file: &Path) -> Result<Recording, RecordedError> {
    let bad = |line, kind| RecordedError::Line { file: file.to_owned(), line, kind };
    // (µs since the first line, Mbit/s, the time as written for messages)
    let mut rows: Vec<(u64, f64)> = Vec::new();
    let (mut first_us, mut prev): (u64, Option<(u64, &str)>) = (0, None);
    for item in lines(text, file) {
        let (n, line) = item?;
        let mut fields = line.split_whitespace();
        let (Some(time), Some(rate), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad(n, LineError::Fields(line.split_whitespace().count())));
        };
        let t: f64 = number(time).ok_or_else(|| bad(n, LineError::NotANumber(snippet(time))))?;
        if t < 0.0 {
            return Err(bad(n, LineError::NegativeTime(snippet(time))));
        }
        if t > MAX_TIME_S as f64 {
            return Err(bad(n, LineError::TimeTooLarge(snippet(time))));
        }
        let v: f64 = number(rate).ok_or_else(|| bad(n, LineError::NotANumber(snippet(rate))))?;
        if v < 0.0 {
            return Err(bad(n, LineError::NegativeRate(snippet(rate))));
        }
        let us = (t * 1e6).round() as u64;
        match prev {
            None => first_us = us,
            Some((p, _)) if us == p => return Err(bad(n, LineError::Repeated(snippet(time)))),
            Some((p, ptext)) if us < p => {
                return Err(bad(n, LineError::Decreasing { prev: snippet(ptext), this: snippet(time) }))
            }
            Some(_) => {}
        }
        prev = Some((us, time));
        rows.push((us - first_us, v));
    }
    let end_us = match rows[..] {
        [] => return Err(RecordedError::Empty { file: file.to_owned() }),
        [_] => ONE_STEP_US,
        [.., (a, _), (b, _)] => b + (b - a),
    };
    Ok(Recording::from_segments(rows, 0, end_us))
}

/// A finite number (Rust's `f64` parser also takes `nan` and `inf`).
fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn parse_mahimahi(text: &str, file: &Path) -> Result<Recording, RecordedError> {
    let bad = |line, kind| RecordedError::Line { file: file.to_owned(), line, kind };
    // (ms, packets in that ms), ms increasing.
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for item in lines(text, file) {
        let (n, line) = item?;
        if line.starts_with('-') {
            return Err(bad(n, LineError::NegativeTime(snippet(line))));
        }
        let ms: u64 = line.parse().map_err(|_| {
            // All digits and still no u64: a time far past any limit, not a typo.
            let kind = if line.bytes().all(|b| b.is_ascii_digit()) { LineError::TimeTooLarge } else { LineError::NotAnInteger };
            bad(n, kind(snippet(line)))
        })?;
        if ms > MAX_TIME_S * 1000 {
            return Err(bad(n, LineError::TimeTooLarge(snippet(line))));
        }
        match runs.last_mut() {
            Some((last, count)) if *last == ms => *count += 1,
            Some((last, _)) if *last > ms => {
                return Err(bad(n, LineError::Decreasing { prev: last.to_string(), this: snippet(line) }))
            }
            _ => runs.push((ms, 1)),
        }
    }
    let (Some(&(period_ms, at_end)), Some(&(first_ms, at_first))) = (runs.last(), runs.first()) else {
        return Err(RecordedError::Empty { file: file.to_owned() });
    };
    if period_ms == 0 {
        return Err(RecordedError::ZeroLength { file: file.to_owned() });
    }
    // `mm-link` delivers at `t + k·period` for every timestamp t of the file: at k·period both
    // the last timestamp's packets of pass k-1 and the 0 ms ones of pass k. So ms 0..period of
    // the first pass is the file as written, ms `period` adds the 0 ms packets to the last
    // ones, and from then on it repeats with the period, from ms 1.
    let zero_ms = if first_ms == 0 { at_first } else { 0 };
    let mut raw: Vec<(u64, f64)> = Vec::with_capacity(2 * runs.len() + 2);
    let mbps = |packets: u64| (packets * PACKET_BITS) as f64 / 1000.0; // bits per µs over 1 ms
    let mut next_ms = 0;
    for &(ms, count) in &runs {
        let count = if ms == period_ms { at_end + zero_ms } else { count };
        if ms > next_ms {
            raw.push((next_ms * 1000, 0.0));
        }
        raw.push((ms * 1000, mbps(count)));
        next_ms = ms + 1;
    }
    Ok(Recording::from_segments(raw, 1000, (period_ms + 1) * 1000))
}
