//! A two-host testbed on one machine: a *device* and an *edge* network namespace joined by a
//! veth pair, each side's egress shaped with the kernel's `tbf` qdisc, so that what crosses
//! between an agent and its broker/edge goes through a real, rate-limited link. Needs root
//! and iproute2 (`ip`, `tc`); `netem` is not available here, so there is no added delay — the
//! link's rate is what the tests change, and the link can be cut ([`Testbed::set_link`]). Both namespaces (and the veth pair with them) are
//! deleted on drop.

use std::ffi::OsStr;
use std::process::Command;

/// The device side's address on the veth link.
pub const DEVICE_IP: &str = "10.201.0.1";
/// The edge side's address (where the broker listens).
pub const EDGE_IP: &str = "10.201.0.2";

/// Which end of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The agent's namespace.
    Device,
    /// The broker's and edge server's namespace.
    Edge,
}

/// Two namespaces and the link between them.
#[derive(Debug)]
pub struct Testbed {
    device_ns: String,
    edge_ns: String,
    device_if: String,
    edge_if: String,
}

/// Runs `program args`, returning its stderr on failure.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(crate::harness::program(program))
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Testbed {
    /// Creates `ferry-dev-<pid>` and `ferry-edge-<pid>` with a veth pair between them
    /// (10.201.0.1/24 ↔ 10.201.0.2/24), loopback up in both, and the link unshaped.
    pub fn create() -> Result<Testbed, String> {
        Testbed::create_tagged("")
    }

    /// [`Testbed::create`] with `tag` (a letter or two) in the names, so that one test
    /// process can run several testbeds at once. Every testbed has the same addresses: they
    /// live in separate namespaces.
    pub fn create_tagged(tag: &str) -> Result<Testbed, String> {
        let pid = std::process::id();
        let tb = Testbed {
            device_ns: format!("ferry-dev{tag}-{pid}"),
            edge_ns: format!("ferry-edge{tag}-{pid}"),
            device_if: format!("fyd{tag}{pid}"),
            edge_if: format!("fye{tag}{pid}"),
        };
        // Leftovers of a killed earlier run with the same pid would make `add` fail.
        let _ = run("ip", &["netns", "del", &tb.device_ns]);
        let _ = run("ip", &["netns", "del", &tb.edge_ns]);
        run("ip", &["netns", "add", &tb.device_ns])?;
        run("ip", &["netns", "add", &tb.edge_ns])?;
        run("ip", &["link", "add", &tb.device_if, "netns", &tb.device_ns, "type", "veth", "peer", "name", &tb.edge_if, "netns", &tb.edge_ns])?;
        for (ns, ifname, ip) in [(&tb.device_ns, &tb.device_if, DEVICE_IP), (&tb.edge_ns, &tb.edge_if, EDGE_IP)] {
            run("ip", &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", ifname])?;
            run("ip", &["-n", ns, "link", "set", ifname, "up"])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(tb)
    }

    /// The namespace of a side.
    pub fn namespace(&self, side: Side) -> &str {
        match side {
            Side::Device => &self.device_ns,
            Side::Edge => &self.edge_ns,
        }
    }

    /// A command that runs `program` inside a side's namespace (`ip netns exec` execs the
    /// program itself, so the child's pid is the program's).
    pub fn command(&self, side: Side, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(crate::harness::program("ip"));
        cmd.args(["netns", "exec", self.namespace(side)]).arg(program);
        cmd
    }

    /// Shapes a side's egress to `kbit` kbit/s with a token bucket (`tc qdisc replace … tbf`):
    /// the device side is the uplink, the edge side the downlink. The bucket holds 10 ms of
    /// traffic (at least 4 KiB), so that a small transfer (the agent's 16 KiB probe) does not
    /// slip through a throttled link at line rate in one burst; it queues up to one second
    /// before dropping.
    pub fn shape(&self, side: Side, kbit: u32) -> Result<(), String> {
        let ifname = match side {
            Side::Device => &self.device_if,
            Side::Edge => &self.edge_if,
        };
        let burst = (u64::from(kbit) * 1000 / 8 / 100).max(4 * 1024);
        run(
            "tc",
            &[
                "-n",
                self.namespace(side),
                "qdisc",
                "replace",
                "dev",
                ifname,
                "root",
                "tbf",
                "rate",
                &format!("{kbit}kbit"),
                "burst",
                &burst.to_string(),
                "latency",
                "1s",
            ],
        )
    }
}

impl Testbed {
    /// Sets a side's end of the veth link down or up (`ip link set … down|up`). With the edge
    /// side down the device side loses its carrier but keeps its address and route: what it
    /// sends vanishes without an error, as when a link breaks somewhere past the board (the
    /// agent learns of it only from its own timeouts). Up again, the device side's carrier
    /// comes back and its connections carry on where TCP left them.
    pub fn set_link(&self, side: Side, up: bool) -> Result<(), String> {
        let ifname = match side {
            Side::Device => &self.device_if,
            Side::Edge => &self.edge_if,
        };
        run("ip", &["-n", self.namespace(side), "link", "set", ifname, if up { "up" } else { "down" }])
    }

    /// Bytes a side has sent on the veth link so far (its interface's `tx_bytes`: every
    /// frame, headers included).
    pub fn tx_bytes(&self, side: Side) -> Result<u64, String> {
        let ifname = match side {
            Side::Device => &self.device_if,
            Side::Edge => &self.edge_if,
        };
        let out = Command::new(crate::harness::program("ip"))
            .args(["netns", "exec", self.namespace(side), "cat", &format!("/sys/class/net/{ifname}/statistics/tx_bytes")])
            .output()
            .map_err(|e| format!("ip netns exec cat: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim().parse().map_err(|_| format!("tx_bytes of {ifname}: {text:?} {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it the other end.
        let _ = run("ip", &["netns", "del", &self.device_ns]);
        let _ = run("ip", &["netns", "del", &self.edge_ns]);
    }
}
