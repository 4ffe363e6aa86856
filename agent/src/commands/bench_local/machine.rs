//! What a measured profile says about the machine it was measured on.

use std::time::{SystemTime, UNIX_EPOCH};

/// The 1-minute load average now (from /proc/loadavg), or "unknown".
pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// This process's nice value (field 19 of /proc/self/stat), or "unknown".
pub(super) fn niceness() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces: count the fields after its closing parenthesis.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(16).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// The CPU as /proc/cpuinfo names it, with the logical CPU count and (x86) its widest SIMD.
pub(super) fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    let flags = info.lines().find_map(|l| l.strip_prefix("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let simd = if !cfg!(target_arch = "x86_64") {
        String::new()
    } else if has("avx512f") {
        ", AVX-512".into()
    } else if has("avx2") {
        ", AVX2, no AVX-512".into()
    } else {
        ", no AVX2".into()
    };
    format!("{model} ({cpus} logical CPUs, {}{simd})", std::env::consts::ARCH)
}

/// Today's date, UTC, as YYYY-MM-DD.
pub(super) fn utc_date() -> String {
    let days = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
