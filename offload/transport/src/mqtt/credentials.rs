//! Where a certificate or key named in `[mqtt]` is read from, and who may read a private key.
//!
//! A value is a path, or `credential:NAME`: the file systemd placed for the service in
//! `$CREDENTIALS_DIRECTORY` from `LoadCredential=NAME:/etc/ferry/certs/…` in the unit. systemd
//! reads the source as root and gives the copy to the service's user, whatever it is (a
//! `DynamicUser=` has no file of its own to be granted), and to no one else: so the key can
//! stay `0600 root` on disk. Outside systemd (no `$CREDENTIALS_DIRECTORY`) such a value is an
//! error that says so; a relative path is never looked up there by itself.
//!
//! A private key must not be readable by other users: a key file whose mode grants anything
//! to "other", or to its group (except in the credentials directory, where systemd may grant
//! the service's user through the group bits of an ACL), is refused with the fix.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::config::ConfigError;

/// What marks a value as a systemd credential's name rather than a path.
pub const CREDENTIAL_PREFIX: &str = "credential:";

/// The environment variable systemd sets for a unit with `LoadCredential=`.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// A certificate or key file, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFile {
    /// Where to read it.
    pub path: PathBuf,
    /// The credential's name, when it came from `$CREDENTIALS_DIRECTORY`.
    pub credential: Option<String>,
}

/// The credential name in `value`, if it is `credential:NAME` (the name is not checked).
pub fn credential_name(value: &Path) -> Option<&str> {
    value.to_str()?.strip_prefix(CREDENTIAL_PREFIX)
}

/// Checks a credential name as systemd accepts it: 1 to 255 bytes, no `/`, not `.` or `..`,
/// no control characters.
pub fn check_credential_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 255 {
        return Err("a credential name is 1 to 255 bytes");
    }
    if name == "." || name == ".." || name.contains('/') {
        return Err("a credential name is a file name: no `/`, not `.` or `..`");
    }
    if name.chars().any(char::is_control) {
        return Err("a credential name has no control characters");
    }
    Ok(())
}

/// Resolves the value of `key` (`ca`, `cert` or `key`) against the process's
/// `$CREDENTIALS_DIRECTORY`.
pub fn resolve(key: &'static str, value: &Path) -> Result<PemFile, ConfigError> {
    let dir = std::env::var_os(CREDENTIALS_DIRECTORY);
    resolve_in(key, value, dir.as_deref().map(Path::new))
}

/// Resolves the value of `key` against the credentials directory `dir` (None: not run by
/// systemd with credentials).
pub fn resolve_in(
    key: &'static str,
    value: &Path,
    dir: Option<&Path>,
) -> Result<PemFile, ConfigError> {
    let Some(name) = credential_name(value) else {
        return Ok(PemFile {
            path: value.to_path_buf(),
            credential: None,
        });
    };
    let fail = |reason: String| ConfigError::Credential {
        key,
        value: value.display().to_string(),
        reason,
    };
    check_credential_name(name).map_err(|r| fail(r.to_owned()))?;
    let dir = dir.filter(|d| !d.as_os_str().is_empty()).ok_or_else(|| {
        fail(format!(
            "${CREDENTIALS_DIRECTORY} is not set: a credential is given to a service by systemd \
             (`LoadCredential={name}:/path/to/file` in its unit); outside systemd give the path"
        ))
    })?;
    Ok(PemFile {
        path: dir.join(OsStr::from_bytes(name.as_bytes())),
        credential: Some(name.to_owned()),
    })
}

/// Refuses a private key file with `mode` (its permission bits) that lets anyone but its
/// owner read it: any "other" bit, or a group bit unless it is a credential.
pub fn check_key_mode(file: &PemFile, mode: u32) -> Result<(), ConfigError> {
    let other = mode & 0o007 != 0;
    let group = mode & 0o070 != 0 && file.credential.is_none();
    let who = match (group, other) {
        (false, false) => return Ok(()),
        (true, false) => "its group",
        (false, true) => "other users",
        (true, true) => "its group and other users",
    };
    Err(ConfigError::KeyPermissions {
        path: file.path.clone(),
        mode: mode & 0o7777,
        who,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> PathBuf {
        PathBuf::from(p)
    }

    #[test]
    fn a_path_is_a_path_with_or_without_a_credentials_directory() {
        let dir = Path::new("/run/credentials/ferry.service");
        for d in [None, Some(dir)] {
            let f = resolve_in("key", &path("/etc/ferry/certs/dev-1.key"), d).unwrap();
            assert_eq!(
                f,
                PemFile {
                    path: path("/etc/ferry/certs/dev-1.key"),
                    credential: None
                }
            );
            // A relative path stays relative: it is not looked up among the credentials.
            assert_eq!(
                resolve_in("key", &path("device.key"), d).unwrap().path,
                path("device.key")
            );
        }
    }

    #[test]
    fn a_credential_is_read_from_the_credentials_directory() {
        let dir = Path::new("/run/credentials/ferry.service");
        let f = resolve_in("key", &path("credential:device.key"), Some(dir)).unwrap();
        assert_eq!(f.path, dir.join("device.key"));
        assert_eq!(f.credential.as_deref(), Some("device.key"));
    }

    #[test]
    fn a_credential_outside_systemd_says_what_to_do() {
        let e = resolve_in("key", &path("credential:device.key"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("key = \"credential:device.key\""), "{e}");
        assert!(e.contains("$CREDENTIALS_DIRECTORY is not set"), "{e}");
        assert!(e.contains("LoadCredential=device.key:"), "{e}");
    }

    #[test]
    fn a_credential_name_cannot_leave_the_directory() {
        let dir = Some(Path::new("/run/credentials/ferry.service"));
        for bad in [
            "credential:",
            "credential:..",
            "credential:.",
            "credential:../etc/shadow",
            "credential:a/b",
        ] {
            let e = resolve_in("cert", &path(bad), dir).unwrap_err().to_string();
            assert!(
                e.contains("cert = ") && e.contains("credential name"),
                "{bad}: {e}"
            );
        }
        let long = format!("credential:{}", "k".repeat(256));
        assert!(resolve_in("cert", &path(&long), dir).is_err());
    }

    #[test]
    fn a_key_readable_by_others_or_its_group_is_refused_with_the_fix() {
        let file = PemFile {
            path: path("/etc/ferry/certs/dev-1.key"),
            credential: None,
        };
        for ok in [0o600, 0o400, 0o700] {
            check_key_mode(&file, ok).unwrap_or_else(|e| panic!("{ok:o}: {e}"));
        }
        for (mode, who) in [
            (0o644, "its group and other users"),
            (0o604, "other users"),
            (0o640, "its group"),
            (0o601, "other users"),
        ] {
            let e = check_key_mode(&file, mode).unwrap_err().to_string();
            assert!(e.contains("/etc/ferry/certs/dev-1.key"), "{e}");
            assert!(
                e.contains(&format!("mode {mode:04o}")) && e.contains(who),
                "{e}"
            );
            assert!(e.contains("chmod 600 /etc/ferry/certs/dev-1.key"), "{e}");
            assert!(e.contains("LoadCredential="), "{e}");
        }
    }

    #[test]
    fn a_credential_may_be_group_readable_but_never_world_readable() {
        let file = PemFile {
            path: path("/run/credentials/ferry.service/device.key"),
            credential: Some("device.key".into()),
        };
        check_key_mode(&file, 0o440).unwrap();
        check_key_mode(&file, 0o400).unwrap();
        assert!(check_key_mode(&file, 0o444).is_err());
    }
}
