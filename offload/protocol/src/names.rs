//! Device ids and model names: short ASCII identifiers that double as MQTT topic levels.
//!
//! Both are stored inline (no heap), so decoding an envelope that carries them allocates
//! nothing, and both are validated once, at construction: a `DeviceId` in hand is always a
//! safe topic level (never `+`, `#`, `/`, `$`, empty or longer than 64 bytes).

use core::fmt;
use core::hash::{Hash, Hasher};

/// Longest device id or model name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Why a string is not a valid device id or model name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("name is {len} bytes, at most {MAX_NAME_LEN} are allowed")]
    TooLong {
        /// Length found, in bytes.
        len: usize,
    },
    /// The name holds a byte outside `[A-Za-z0-9_.-]`.
    #[error("byte {byte:#04x} at offset {at} is not one of [A-Za-z0-9_.-]")]
    BadByte {
        /// The offending byte.
        byte: u8,
        /// Its offset in the name.
        at: usize,
    },
}

/// Checks the shared rule for device ids and model names.
pub(crate) fn validate_name(bytes: &[u8]) -> Result<(), NameError> {
    if bytes.is_empty() {
        return Err(NameError::Empty);
    }
    if bytes.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: bytes.len() });
    }
    match bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')))
    {
        Some(at) => Err(NameError::BadByte {
            byte: bytes[at],
            at,
        }),
        None => Ok(()),
    }
}

macro_rules! inline_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name {
            len: u8,
            bytes: [u8; MAX_NAME_LEN],
        }

        impl $name {
            /// Validates `s` and stores it inline.
            pub fn new(s: &str) -> Result<Self, NameError> {
                Self::from_bytes(s.as_bytes())
            }

            /// Validates raw bytes (as read off the wire) and stores them inline.
            pub fn from_bytes(raw: &[u8]) -> Result<Self, NameError> {
                validate_name(raw)?;
                let mut bytes = [0u8; MAX_NAME_LEN];
                bytes[..raw.len()].copy_from_slice(raw);
                // validate_name bounds the length by MAX_NAME_LEN (64), which fits a u8.
                Ok(Self { len: raw.len() as u8, bytes })
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                // Only ASCII is ever stored (checked in `from_bytes`), so this cannot fail;
                // the fallback keeps the accessor total without a panic path.
                core::str::from_utf8(self.as_bytes()).unwrap_or("")
            }

            /// The name's bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.bytes[..usize::from(self.len)]
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_bytes() == other.as_bytes()
            }
        }
        impl Eq for $name {}
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_bytes().hash(state);
            }
        }
        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> core::cmp::Ordering {
                self.as_bytes().cmp(other.as_bytes())
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl core::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }
        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

inline_name! {
    /// A device's identity: the CN of its client certificate and its MQTT topic level
    /// (`ferry/<device>/...`). 1–64 bytes of `[A-Za-z0-9_.-]`.
    DeviceId
}

inline_name! {
    /// A model's name as the edge knows it, also an MQTT topic level
    /// (`ferry/<device>/req/<model>`). 1–64 bytes of `[A-Za-z0-9_.-]`.
    ModelName
}
