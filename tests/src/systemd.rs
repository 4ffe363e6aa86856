//! A real systemd, booted as PID 1 over a Debian root, to test the shipped unit the way a
//! board runs it (root only). `systemd-nspawn` does not work in this sandbox, so the boot is
//! done by hand, as nspawn would:
//!
//! 1. The root is made once with `debootstrap --variant=minbase` (plus [`PACKAGES`]) from the
//!    Debian mirror and cached in [`CACHE`] (`FERRY_TEST_ROOT` overrides), rebuilt when
//!    absent or made for another package list. It is never written to: each boot runs over an
//!    overlay whose upper layer the test fills first (the binary, models, configs, unit).
//! 2. The boot process moves into cgroups of its own below the test's (name=systemd,
//!    memory, pids, devices, the unified hierarchy), then `unshare --cgroup --pid --fork
//!    --mount --net --uts --ipc`: systemd manages only that subtree, and its loopback, ports
//!    and mounts are its own.
//! 3. Inside: the overlay, `/proc`, `/sys` read-only (so nothing touches the host's devices),
//!    the cgroup hierarchies mounted afresh (rooted at its own cgroups), a minimal `/dev`,
//!    tmpfs on `/run` and `/tmp`, `lo` up, `pivot_root`, and `exec /lib/systemd/systemd` with
//!    `container=ferry-test`.
//!
//! Commands run inside through `nsenter` into all its namespaces. Every wait is bounded;
//! dropping the [`System`] kills its PID 1 (which ends every process in the namespace), then
//! removes its cgroups and its overlay. What cannot be done here comes back as an
//! [`Unavailable`] that says exactly what and why.

use std::collections::HashMap;
use std::fs::DirBuilder;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where the Debian root is cached between runs.
pub const CACHE: &str = "/var/cache/ferry-tests/debian-bookworm";
/// The Debian release of the root.
pub const SUITE: &str = "bookworm";
/// What the root has beyond `minbase`: systemd itself, a broker for the agent to reach with
/// its key, and curl to speak to the API socket as an application would.
pub const PACKAGES: &[&str] = &["systemd", "mosquitto", "curl"];
/// The mirror debootstrap fetches from (`FERRY_DEBIAN_MIRROR` overrides).
pub const MIRROR: &str = "http://deb.debian.org/debian";

/// The file in the root that says which package list it was made for.
const STAMP: &str = ".ferry-test-root";

/// Why a real systemd cannot be booted here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a real systemd cannot be booted here: {}", self.0)
    }
}

fn unavailable(why: impl Into<String>) -> Unavailable {
    Unavailable(why.into())
}

/// What a command run inside printed, and how it ended.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// The exit code; None if it was killed (a timeout) or died of a signal.
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Output {
    /// True when it exited 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout, trimmed.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}; stdout: {}; stderr: {}",
            self.code,
            self.stdout.trim(),
            self.stderr.trim()
        )
    }
}

/// Runs `cmd` for at most `timeout`, collecting its output; killed when the time is up.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output {
                code: None,
                stdout: String::new(),
                stderr: format!("cannot run {cmd:?}: {e}"),
            }
        }
    };
    let drain = |s: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut s) = s {
                let _ = s.read_to_string(&mut text);
            }
            text
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let end = Instant::now() + timeout;
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Output {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// True when this process runs as root.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A program from the host's PATH or sbin directories.
fn host_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The cached Debian root, made with debootstrap if it is absent or was made for another
/// package list (a lock keeps two test processes from making it at once).
pub fn debian_root() -> Result<PathBuf, Unavailable> {
    if !is_root() {
        return Err(unavailable(
            "the test must run as root (debootstrap, namespaces, mounts, cgroups)",
        ));
    }
    let root = std::env::var_os("FERRY_TEST_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CACHE));
    let stamp = format!("{SUITE} minbase {}\n", PACKAGES.join(","));
    let parent = root
        .parent()
        .ok_or_else(|| unavailable(format!("{}: no parent directory", root.display())))?;
    std::fs::create_dir_all(parent)
        .map_err(|e| unavailable(format!("cannot create {}: {e}", parent.display())))?;
    let lock = std::fs::File::create(parent.join(".lock"))
        .map_err(|e| unavailable(format!("cannot create the cache lock: {e}")))?;
    lock.lock()
        .map_err(|e| unavailable(format!("cannot lock the cache: {e}")))?;
    if std::fs::read_to_string(root.join(STAMP)).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(root);
    }
    let debootstrap = host_program("debootstrap").ok_or_else(|| {
        unavailable(
            "debootstrap is not installed (tests/run.sh installs it: apt-get install debootstrap)",
        )
    })?;
    let mirror = std::env::var("FERRY_DEBIAN_MIRROR").unwrap_or_else(|_| MIRROR.to_owned());
    let building = root.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    eprintln!(
        "systemd harness: making the Debian root {} with debootstrap from {mirror} (once)",
        root.display()
    );
    let mut cmd = Command::new(debootstrap);
    cmd.arg("--variant=minbase")
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(&building)
        .arg(&mirror);
    let out = run_bounded(cmd, Duration::from_secs(1200));
    if !out.ok() {
        let _ = std::fs::remove_dir_all(&building);
        let tail: Vec<&str> = out
            .stdout
            .lines()
            .chain(out.stderr.lines())
            .rev()
            .take(15)
            .collect();
        return Err(unavailable(format!(
            "debootstrap {SUITE} from {mirror} failed (exit {:?}); last lines:\n{}",
            out.code,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    std::fs::write(building.join(STAMP), &stamp)
        .map_err(|e| unavailable(format!("cannot stamp the root: {e}")))?;
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&building, &root)
        .map_err(|e| unavailable(format!("cannot move the root into place: {e}")))?;
    Ok(root)
}

/// Moves the shell into fresh cgroups named `$1` below its own, then execs `unshare` with the
/// rest of its arguments.
const START: &str = r#"set -eu
id=$1; shift
while IFS=: read -r n ctl path; do
  case "$ctl" in
    name=systemd) d=/sys/fs/cgroup/systemd ;;
    memory|pids|devices) d=/sys/fs/cgroup/$ctl ;;
    "") d=/sys/fs/cgroup/unified; [ -f /sys/fs/cgroup/cgroup.controllers ] && d=/sys/fs/cgroup ;;
    *) continue ;;
  esac
  [ -d "$d$path" ] || continue
  mkdir -p "$d$path/$id"
  echo "$d$path/$id" >> "$CGROUP_LIST"
  echo $$ > "$d$path/$id/cgroup.procs"
done < /proc/self/cgroup
exec unshare --cgroup --pid --fork --mount --net --uts --ipc --kill-child "$@"
"#;

/// Runs inside the new namespaces: mounts the root and execs systemd. `$1` the cached root,
/// `$2` the scratch directory with `upper/`, `work/`, `merged/`.
const BOOT: &str = r#"set -eu
lower=$1; s=$2; r=$s/merged
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$s/upper,workdir=$s/work" "$r"
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount -o remount,bind,ro "$r/sys"
mount -t tmpfs -o mode=755 cgroup "$r/sys/fs/cgroup"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  umount "$r/sys/fs/cgroup"; mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup"
else
  for h in systemd memory pids devices; do
    [ -d "/sys/fs/cgroup/$h" ] || continue
    mkdir "$r/sys/fs/cgroup/$h"
    case $h in systemd) o=none,name=systemd ;; *) o=$h ;; esac
    mount -t cgroup -o "$o" cgroup "$r/sys/fs/cgroup/$h"
  done
  if [ -d /sys/fs/cgroup/unified ]; then
    mkdir "$r/sys/fs/cgroup/unified"; mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup/unified"
  fi
fi
mount -t tmpfs -o mode=755,nosuid dev "$r/dev"
for n in null zero full random urandom tty; do touch "$r/dev/$n"; mount --bind "/dev/$n" "$r/dev/$n"; done
mkdir "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o mode=1777 shm "$r/dev/shm"
mount -t tmpfs -o mode=755 run "$r/run"
mount -t tmpfs -o mode=1777 tmp "$r/tmp"
ip link set lo up
cd "$r"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
# As nspawn does: systemd leaves propagation to its container manager, and LoadCredential=
# needs the mounts it makes for a service to reach its own namespace.
mount --make-rshared /
export container=ferry-test
exec /lib/systemd/systemd
"#;

/// A systemd booted as PID 1 in namespaces of its own; shut down (killed) on drop.
#[derive(Debug)]
pub struct System {
    unshare: Child,
    /// The host's pid of the namespace's PID 1 (systemd).
    pub pid1: u32,
    cgroups: Vec<PathBuf>,
    upper: PathBuf,
    scratch: Option<tempfile::TempDir>,
}

/// Makes `path` and its missing parents with mode 0755. The upper layer's directories give the
/// merged ones their modes, so they must be what the root's are.
pub fn mkdirs(path: &Path) {
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
}

/// Writes `contents` to `path` (parents made) with `mode`.
pub fn write_file(path: &Path, contents: impl AsRef<[u8]>, mode: u32) {
    if let Some(parent) = path.parent() {
        mkdirs(parent);
    }
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Copies the file `from` to `to` (parents made) with `mode`.
pub fn copy_file(from: &Path, to: &Path, mode: u32) {
    let bytes = std::fs::read(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    write_file(to, bytes, mode);
}

/// Copies the directory `from` into `to`, files 0644 and directories 0755.
pub fn copy_tree(from: &Path, to: &Path) {
    mkdirs(to);
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            copy_tree(&entry.path(), &target);
        } else {
            copy_file(&entry.path(), &target, 0o644);
        }
    }
}

impl System {
    /// Boots systemd over an overlay of `root` whose upper layer `prepare` has filled (it is
    /// given the upper layer's path: write `/etc/x` as `upper.join("etc/x")`), and waits (at
    /// most 90 s) until it has finished starting up.
    pub fn boot(root: &Path, prepare: impl FnOnce(&Path)) -> Result<System, Unavailable> {
        static BOOTS: AtomicU32 = AtomicU32::new(0);
        for tool in ["unshare", "nsenter", "ip", "mount"] {
            host_program(tool)
                .ok_or_else(|| unavailable(format!("{tool} is not installed on the host")))?;
        }
        let scratch = tempfile::Builder::new()
            .prefix("ferry-systemd-")
            .tempdir_in("/var/tmp")
            .map_err(|e| unavailable(format!("no scratch directory: {e}")))?;
        let s = scratch.path();
        for d in ["upper", "work", "merged"] {
            mkdirs(&s.join(d));
        }
        let upper = s.join("upper");
        prepare(&upper);
        std::fs::write(s.join("start.sh"), START).map_err(|e| unavailable(e.to_string()))?;
        std::fs::write(s.join("boot.sh"), BOOT).map_err(|e| unavailable(e.to_string()))?;
        let id = format!(
            "ferry-test-{}-{}",
            std::process::id(),
            BOOTS.fetch_add(1, Ordering::Relaxed)
        );
        let list = s.join("cgroups");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg(s.join("start.sh"))
            .arg(&id)
            .arg("/bin/sh")
            .arg(s.join("boot.sh"))
            .arg(root)
            .arg(s)
            .env("CGROUP_LIST", &list)
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(s.join("boot.log"))
                    .map_err(|e| unavailable(e.to_string()))?,
            ))
            .stderr(Stdio::from(
                std::fs::File::create(s.join("boot.err"))
                    .map_err(|e| unavailable(e.to_string()))?,
            ));
        let unshare = cmd
            .spawn()
            .map_err(|e| unavailable(format!("cannot start the boot: {e}")))?;
        let mut system = System {
            pid1: 0,
            unshare,
            cgroups: Vec::new(),
            upper,
            scratch: Some(scratch),
        };
        // The namespace's PID 1 is the child unshare forks, once the start script (whose own
        // children are its mkdirs) has become unshare.
        let me = system.unshare.id();
        let children = format!("/proc/{me}/task/{me}/children");
        let end = Instant::now() + Duration::from_secs(10);
        while system.pid1 == 0 && Instant::now() < end {
            if let Ok(Some(_)) = system.unshare.try_wait() {
                break;
            }
            let comm = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap_or_default();
            if comm.trim() != "unshare" {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            system.pid1 = text
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            if system.pid1 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        system.cgroups = std::fs::read_to_string(&list)
            .unwrap_or_default()
            .lines()
            .map(PathBuf::from)
            .collect();
        if system.pid1 == 0 {
            return Err(unavailable(format!(
                "the boot did not start a PID 1: {}",
                system.boot_log()
            )));
        }
        // Until systemd is PID 1 in there, commands cannot reach it.
        let end = Instant::now() + Duration::from_secs(90);
        let mut last = Output::default();
        while Instant::now() < end {
            let comm =
                std::fs::read_to_string(format!("/proc/{}/comm", system.pid1)).unwrap_or_default();
            if comm.trim() == "systemd" {
                last = system.run(
                    &["systemctl", "is-system-running", "--wait"],
                    Duration::from_secs(20),
                );
                if matches!(last.out(), "running" | "degraded") {
                    return Ok(system);
                }
            } else if comm.is_empty() {
                return Err(unavailable(format!(
                    "PID 1 exited during the boot: {}",
                    system.boot_log()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let failed = system.run(
            &["systemctl", "--failed", "--no-legend", "--no-pager"],
            Duration::from_secs(10),
        );
        Err(unavailable(format!(
            "systemd did not finish starting up in 90 s (last: {last}); failed units: {}; {}",
            failed.out(),
            system.boot_log()
        )))
    }

    /// What the boot scripts wrote.
    pub fn boot_log(&self) -> String {
        let read = |n: &str| {
            self.scratch
                .as_ref()
                .and_then(|s| std::fs::read_to_string(s.path().join(n)).ok())
                .unwrap_or_default()
        };
        format!(
            "boot stdout: {} boot stderr: {}",
            read("boot.log").trim(),
            read("boot.err").trim()
        )
    }

    /// The overlay's upper layer: what the test wrote and what the system changed.
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// Runs `args` inside (all of its namespaces, its root), for at most `timeout`, with a
    /// plain environment.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.pid1.to_string())
            .args([
                "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd", "--",
            ])
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .env("SYSTEMD_PAGER", "")
            .env("SYSTEMD_COLORS", "0");
        run_bounded(cmd, timeout)
    }

    /// Runs a shell script inside (`/bin/sh -c`), for at most 60 s.
    pub fn sh(&self, script: &str) -> Output {
        self.run(&["/bin/sh", "-c", script], Duration::from_secs(60))
    }

    /// `systemctl ARGS` inside, for at most `timeout`.
    pub fn systemctl(&self, args: &[&str], timeout: Duration) -> Output {
        let mut all = vec!["systemctl", "--no-pager"];
        all.extend_from_slice(args);
        self.run(&all, timeout)
    }

    /// The properties `props` of `unit` (`systemctl show`).
    pub fn show(&self, unit: &str, props: &[&str]) -> HashMap<String, String> {
        let p = props.join(",");
        let out = self.systemctl(&["show", unit, "-p", &p], Duration::from_secs(20));
        out.stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// `unit`'s journal, messages only.
    pub fn journal(&self, unit: &str) -> String {
        self.run(
            &["journalctl", "-u", unit, "-o", "cat", "--no-pager"],
            Duration::from_secs(30),
        )
        .stdout
    }

    /// Waits (at most `timeout`) until `done(journal of unit)`; false if it never is.
    pub fn wait_journal(&self, unit: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if done(&self.journal(unit)) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn shut_down(&mut self) {
        if self.pid1 != 0 {
            // SIGKILL to a namespace's PID 1 ends every process in it.
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid1.to_string()])
                .status();
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end && matches!(self.unshare.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        // The cgroups empty as the processes are reaped: remove them, deepest first.
        let end = Instant::now() + Duration::from_secs(10);
        for cgroup in &self.cgroups {
            while cgroup.exists() && Instant::now() < end {
                remove_cgroup(cgroup);
                if cgroup.exists() {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            if cgroup.exists() {
                eprintln!(
                    "systemd harness: could not remove the cgroup {}",
                    cgroup.display()
                );
            }
        }
        self.pid1 = 0;
        // The overlay went with the mount namespace; the scratch directory goes now.
        self.scratch.take();
    }
}

/// Removes a cgroup directory and the ones below it (cgroupfs removes its own files).
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

impl Drop for System {
    fn drop(&mut self) {
        self.shut_down();
    }
}
