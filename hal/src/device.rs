//! The device descriptor: what the board is and what it can run, as the agent publishes it.

use crate::precision::Precision;

/// The most CPU clusters (groups of identical cores) a descriptor lists.
pub const MAX_CLUSTERS: usize = 4;
/// The most accelerators a descriptor lists.
pub const MAX_ACCELERATORS: usize = 4;
/// The most (model, precision) throughput figures a descriptor lists.
pub const MAX_THROUGHPUTS: usize = 16;

/// A short name (board, model, accelerator).
pub type Name = heapless::String<32>;

/// A group of identical CPU cores.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuCluster {
    /// Core type, e.g. `cortex-a72`.
    pub core: Name,
    /// How many cores of this type.
    pub count: u16,
    /// Highest clock, Hz.
    pub max_hz: u64,
    /// Lowest clock, Hz (0 when unknown).
    pub min_hz: u64,
}

/// An accelerator the board offers to model runtimes.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Accelerator {
    /// Kind, e.g. `gpu`, `npu`, `dla`.
    pub kind: Name,
    /// Name, e.g. `maxwell-128`.
    pub name: Name,
}

/// Measured local throughput of one model at one precision.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ModelThroughput {
    /// Model name, e.g. `digits`.
    pub model: Name,
    /// Precision the figure was measured at.
    pub precision: Precision,
    /// Inferences per second, one request at a time.
    pub inferences_per_second: f32,
}

/// What the agent publishes about its board.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeviceDescriptor {
    /// Board type, e.g. `rpi4`.
    pub board: Name,
    /// CPU clusters.
    pub cpu: heapless::Vec<CpuCluster, MAX_CLUSTERS>,
    /// Total memory, bytes.
    pub memory_bytes: u64,
    /// Accelerators.
    pub accelerators: heapless::Vec<Accelerator, MAX_ACCELERATORS>,
    /// Precisions the local runtime supports on this board.
    pub precisions: heapless::Vec<Precision, 2>,
    /// Measured local throughput per model and precision (empty until measured).
    pub throughput: heapless::Vec<ModelThroughput, MAX_THROUGHPUTS>,
}

impl DeviceDescriptor {
    /// Total CPU cores over all clusters.
    pub fn cpu_cores(&self) -> u32 {
        self.cpu.iter().map(|c| u32::from(c.count)).sum()
    }

    /// Records (or replaces) the measured throughput of `model` at `precision`. Returns false
    /// when the table is full or the model name is too long.
    pub fn set_throughput(&mut self, model: &str, precision: Precision, ips: f32) -> bool {
        if let Some(t) =
            self.throughput.iter_mut().find(|t| t.model.as_str() == model && t.precision == precision)
        {
            t.inferences_per_second = ips;
            return true;
        }
        let Ok(model) = Name::try_from(model) else { return false };
        self.throughput
            .push(ModelThroughput { model, precision, inferences_per_second: ips })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_replaced_not_duplicated() {
        let mut d = DeviceDescriptor::default();
        assert!(d.set_throughput("digits", Precision::Int8, 100.0));
        assert!(d.set_throughput("digits", Precision::Int8, 120.0));
        assert_eq!(d.throughput.len(), 1);
        assert_eq!(d.throughput[0].inferences_per_second, 120.0);
    }
}
