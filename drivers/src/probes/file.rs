//! A procfs/sysfs file opened once and re-read in place: the reason a sweep does not allocate.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A kernel attribute file kept open. Each [`read`](Self::read) is a `pread` at offset 0, which
/// makes procfs and sysfs render the file afresh, into a buffer the caller owns.
#[derive(Debug)]
pub struct SysFile {
    file: File,
    path: PathBuf,
}

impl SysFile {
    /// Opens `path` for reading (start-up only: this allocates the path).
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        Ok(SysFile { file: File::open(path)?, path: path.to_path_buf() })
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole file (or as much as fits) into `buf` and returns the filled part.
    pub fn read<'b>(&self, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
        let mut n = 0;
        while n < buf.len() {
            match self.file.read_at(&mut buf[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(&buf[..n])
    }
}

/// Reads a small file once into a `String` (start-up only: names, labels, static limits).
pub fn read_trimmed(path: impl AsRef<Path>) -> io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_owned())
}

/// The entries of `dir` whose names start with `prefix`, sorted by the number after it
/// (`thermal_zone2` before `thermal_zone10`), then by name. Start-up only.
pub fn numbered_entries(dir: &Path, prefix: &str) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.starts_with(prefix) {
            out.push((name, entry.path()));
        }
    }
    let key = |n: &str| n[prefix.len()..].parse::<u64>().unwrap_or(u64::MAX);
    out.sort_by(|a, b| key(&a.0).cmp(&key(&b.0)).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}
