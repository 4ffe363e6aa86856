//! The numeric precision a model variant runs in.

use core::fmt;
use core::str::FromStr;

/// The numeric precision of a model variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Precision {
    /// 32-bit floating point weights and activations.
    Fp32,
    /// 8-bit integer (quantized) weights and activations.
    Int8,
}

impl Precision {
    /// Every precision, in a fixed order.
    pub const ALL: [Precision; 2] = [Precision::Fp32, Precision::Int8];

    /// The lower-case name used in configs, file names and the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a precision name that is neither `fp32` nor `int8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPrecision;

impl fmt::Display for UnknownPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a precision: `fp32` or `int8`")
    }
}

impl FromStr for Precision {
    type Err = UnknownPrecision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Case-insensitive without allocating, so that this works without `std`.
        let is = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(s));
        if is(&["fp32", "f32", "float32"]) {
            Ok(Precision::Fp32)
        } else if is(&["int8", "i8", "u8"]) {
            Ok(Precision::Int8)
        } else {
            Err(UnknownPrecision)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_names_round_trip() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>(), Ok(p));
        }
        assert_eq!("INT8".parse::<Precision>(), Ok(Precision::Int8));
        assert_eq!("fp16".parse::<Precision>(), Err(UnknownPrecision));
    }
}
