//! The `ferry-edge` binary.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("ferry-edge: the edge server is not built yet (issue 3)")
}
