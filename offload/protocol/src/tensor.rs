//! Tensors on the wire: a dtype, a shape of at most [`MAX_DIMS`] dimensions, and raw
//! little-endian element bytes whose length always matches `shape × dtype size`.

use super::error::TensorError;

/// Most dimensions a tensor may have.
pub const MAX_DIMS: usize = 8;

/// Element type of a tensor. Elements travel little-endian, packed, without padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// Unsigned byte.
    U8,
    /// Signed byte (quantized INT8 tensors).
    I8,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
}

impl DType {
    /// Size of one element, in bytes.
    pub const fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 => 1,
            DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }

    /// The wire code of this dtype.
    pub const fn code(self) -> u8 {
        match self {
            DType::F32 => 1,
            DType::F16 => 2,
            DType::U8 => 3,
            DType::I8 => 4,
            DType::I32 => 5,
            DType::I64 => 6,
        }
    }

    /// The dtype with this wire code, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => DType::F32,
            2 => DType::F16,
            3 => DType::U8,
            4 => DType::I8,
            5 => DType::I32,
            6 => DType::I64,
            _ => return None,
        })
    }
}

/// A tensor shape of at most [`MAX_DIMS`] dimensions, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    ndim: u8,
    dims: [u32; MAX_DIMS],
}

impl Shape {
    /// A shape from its dimensions; fails beyond [`MAX_DIMS`] dimensions.
    pub fn new(dims: &[u32]) -> Result<Self, TensorError> {
        if dims.len() > MAX_DIMS {
            return Err(TensorError::TooManyDims { ndim: dims.len() });
        }
        let mut inline = [0u32; MAX_DIMS];
        inline[..dims.len()].copy_from_slice(dims);
        // dims.len() <= MAX_DIMS (8) was checked above.
        Ok(Self {
            ndim: dims.len() as u8,
            dims: inline,
        })
    }

    /// The dimensions.
    pub fn dims(&self) -> &[u32] {
        &self.dims[..usize::from(self.ndim)]
    }

    /// Number of dimensions (0 for a scalar).
    pub fn ndim(&self) -> usize {
        usize::from(self.ndim)
    }

    /// Number of elements, or `None` if it overflows `usize`.
    pub fn element_count(&self) -> Option<usize> {
        self.dims()
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
    }

    /// Bytes a tensor of this shape and `dtype` occupies, or `None` on overflow.
    pub fn byte_len(&self, dtype: DType) -> Option<usize> {
        self.element_count()?.checked_mul(dtype.size())
    }
}

impl core::fmt::Debug for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.dims()).finish()
    }
}

/// Checks that `len` bytes are exactly what `shape` × `dtype` needs.
fn check_len(dtype: DType, shape: &Shape, len: usize) -> Result<(), TensorError> {
    let expected = shape.byte_len(dtype).ok_or(TensorError::Overflow)?;
    if expected != len {
        return Err(TensorError::LengthMismatch {
            expected,
            actual: len,
        });
    }
    Ok(())
}

/// A tensor whose element bytes are borrowed (from a decoded message, or from the caller
/// before encoding). Its data length always matches its shape and dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorRef<'a> {
    dtype: DType,
    shape: Shape,
    data: &'a [u8],
}

impl<'a> TensorRef<'a> {
    /// A tensor view; fails unless `data.len() == shape × dtype.size()`.
    pub fn new(dtype: DType, shape: Shape, data: &'a [u8]) -> Result<Self, TensorError> {
        check_len(dtype, &shape, data.len())?;
        Ok(Self { dtype, shape, data })
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Raw little-endian element bytes (not necessarily aligned for the element type).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Copies the tensor into an owned [`Tensor`].
    pub fn to_tensor(&self) -> Tensor {
        Tensor {
            dtype: self.dtype,
            shape: self.shape,
            data: self.data.to_vec(),
        }
    }

    /// The elements as `f32`s, if the dtype is [`DType::F32`] (decoded one by one, so the
    /// unaligned wire bytes are never reinterpreted in place).
    pub fn f32_values(&self) -> Option<impl Iterator<Item = f32> + 'a> {
        (self.dtype == DType::F32).then(|| {
            self.data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        })
    }
}

/// An owned tensor. Its data length always matches its shape and dtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    dtype: DType,
    shape: Shape,
    data: Vec<u8>,
}

impl Tensor {
    /// An owned tensor; fails unless `data.len() == shape × dtype.size()`.
    pub fn new(dtype: DType, shape: Shape, data: Vec<u8>) -> Result<Self, TensorError> {
        check_len(dtype, &shape, data.len())?;
        Ok(Self { dtype, shape, data })
    }

    /// An `f32` tensor from values, written little-endian.
    pub fn from_f32(shape: Shape, values: &[f32]) -> Result<Self, TensorError> {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self::new(DType::F32, shape, data)
    }

    /// A borrowed view of this tensor.
    pub fn as_ref(&self) -> TensorRef<'_> {
        TensorRef {
            dtype: self.dtype,
            shape: self.shape,
            data: &self.data,
        }
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Raw little-endian element bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the element bytes out.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}
