//! Parsing kernel text without allocating.

/// The whitespace-separated fields of `line`.
pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty())
}

/// The lines of `text`.
pub fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n')
}

/// `text` without leading and trailing ASCII whitespace.
pub fn trim(text: &[u8]) -> &[u8] {
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    let end = text.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &text[start..end]
}

/// An unsigned decimal integer (surrounding whitespace allowed).
pub fn u64_of(text: &[u8]) -> Option<u64> {
    let t = trim(text);
    if t.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in t {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// A signed decimal integer (surrounding whitespace allowed).
pub fn i64_of(text: &[u8]) -> Option<i64> {
    let t = trim(text);
    match t.first() {
        Some(b'-') => u64_of(&t[1..]).and_then(|v| i64::try_from(v).ok()).map(|v| -v),
        _ => u64_of(t).and_then(|v| i64::try_from(v).ok()),
    }
}

/// A decimal number such as `0.52` (surrounding whitespace allowed).
pub fn f64_of(text: &[u8]) -> Option<f64> {
    core::str::from_utf8(trim(text)).ok()?.parse().ok()
}

/// The value of `Key:   1234 kB` lines in `/proc/meminfo`-style text, in the file's unit.
pub fn keyed_u64(text: &[u8], key: &[u8]) -> Option<u64> {
    for line in lines(text) {
        if line.len() > key.len() && line.starts_with(key) && line[key.len()] == b':' {
            return fields(&line[key.len() + 1..]).next().and_then(u64_of);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_with_whitespace_and_signs() {
        assert_eq!(u64_of(b" 1500000\n"), Some(1_500_000));
        assert_eq!(i64_of(b"-4000\n"), Some(-4000));
        assert_eq!(u64_of(b"12a"), None);
        assert_eq!(u64_of(b""), None);
        assert_eq!(f64_of(b"0.52"), Some(0.52));
    }

    #[test]
    fn keyed_values_match_whole_keys_only() {
        let t = b"MemTotal:        3884428 kB\nMemFree:          2915756 kB\nMemAvailable:    3391740 kB\n";
        assert_eq!(keyed_u64(t, b"MemAvailable"), Some(3_391_740));
        assert_eq!(keyed_u64(t, b"Mem"), None);
    }
}
