//! The process's resident memory, read from `/proc/self/status` (Linux).

/// Resident set size now and at its peak, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rss {
    /// `VmRSS`: resident now.
    pub current_kib: u64,
    /// `VmHWM`: the peak since the process started.
    pub peak_kib: u64,
}

/// Reads this process's RSS; `None` where `/proc/self/status` is not there.
pub fn read() -> Option<Rss> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status(&status)
}

fn parse_status(status: &str) -> Option<Rss> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(Rss { current_kib: field("VmRSS:")?, peak_kib: field("VmHWM:")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let s = "Name:\tferry\nVmHWM:\t  65432 kB\nVmRSS:\t   1234 kB\n";
        assert_eq!(parse_status(s), Some(Rss { current_kib: 1234, peak_kib: 65432 }));
        assert_eq!(parse_status("Name: x\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let rss = read().expect("/proc/self/status on Linux");
        assert!(rss.current_kib > 0 && rss.peak_kib >= rss.current_kib);
    }
}
