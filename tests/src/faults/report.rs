//! The fault suite's table, and RELIABILITY.md regenerated with it: only the part between
//! [`BEGIN`] and [`END`] is rewritten, so that the file's other sections survive.

use std::path::Path;
use std::process::Command;

use super::figures::Figures;

/// Marks the start of the generated part.
pub const BEGIN: &str = "<!-- faults:begin -->";
/// Marks its end.
pub const END: &str = "<!-- faults:end -->";

/// The machine the run was on: CPU model, cores, kernel.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = command_line("uname", &["-r"]).unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {kernel}")
}

/// Now, UTC, to the minute.
pub fn date() -> String {
    command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
        .unwrap_or_else(|| "unknown date".to_string())
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The generated part: when, where, the load, and one row per scenario.
pub fn render(figures: &[Figures], load: &str, wall_s: f64) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Last run: {}, on {} (suite wall time {wall_s:.0} s).\n\n",
        date(),
        machine()
    ));
    out.push_str(&format!("Load: {load}\n\n"));
    out.push_str("| scenario | fault | sent | answered | on edge | local (fallback) | deadline misses | clear errors | cut by kill | lost | duplicated | offload back after |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for f in figures {
        let recovery = f
            .recovery_s
            .map_or_else(|| "never".to_string(), |s| format!("{s:.1} s"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} |\n",
            f.scenario,
            f.fault,
            f.sent,
            f.answered,
            f.on_edge,
            f.local,
            f.fallback,
            f.deadline_misses,
            f.errors,
            f.cut_by_kill,
            f.lost,
            f.duplicated,
            recovery
        ));
    }
    out.push_str("\nPer scenario, what the clear errors and fallbacks were, and the edge's own counters:\n\n");
    for f in figures {
        out.push_str(&format!("- **{}**: {}", f.scenario, f.notes.join("; ")));
        if !f.violations.is_empty() {
            out.push_str(&format!(
                " — **{} check(s) failed**: {}",
                f.violations.len(),
                f.violations.join("; ")
            ));
        }
        out.push('\n');
    }
    out
}

/// Replaces what is between the fault suite's markers in `path` with `generated` (appending
/// the markers if the file has none, creating the file if there is none).
pub fn write(path: &Path, generated: &str) -> std::io::Result<()> {
    write_section(path, "faults", generated)
}

/// [`write`] between `<!-- {name}:begin -->` and `<!-- {name}:end -->`.
pub fn write_section(path: &Path, name: &str, generated: &str) -> std::io::Result<()> {
    let (begin, end) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{begin}\n{generated}{end}");
    let new = match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &text[..b], &text[e + end.len()..]),
        _ if text.is_empty() => format!("{block}\n"),
        _ => format!("{}\n\n{block}\n", text.trim_end()),
    };
    std::fs::write(path, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_part_between_the_markers_is_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("R.md");
        std::fs::write(
            &path,
            format!("# Head\n\n{BEGIN}\nold\n{END}\n\n## Fuzz\nkept\n"),
        )
        .expect("write");
        write(&path, "new\n").expect("rewrite");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            format!("# Head\n\n{BEGIN}\nnew\n{END}\n\n## Fuzz\nkept\n")
        );
        let bare = dir.path().join("bare.md");
        std::fs::write(&bare, "# Only a head\n").expect("write");
        write(&bare, "t\n").expect("append");
        assert_eq!(
            std::fs::read_to_string(&bare).expect("read"),
            format!("# Only a head\n\n{BEGIN}\nt\n{END}\n")
        );
    }
}
