//! GGUF v2/v3 header reader: metadata and tensor infos only, never tensor data; every count and
//! length is checked against the bytes left in the file before anything is allocated.

use super::error::{AlignmentError, DimsError, GgufError, GgufErrorKind as K};
use super::value::{Array, Metadata, Value, ValueType};
use crate::ggml_type::GgmlType;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 4] = b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's GGML_MAX_DIMS.
pub const MAX_DIMS: u32 = 4;
/// Deepest array-of-arrays nesting accepted; bounds the reader's recursion.
pub(crate) const MAX_NESTING: u32 = 16;
/// Largest header (metadata and tensor infos) accepted. Real headers are a few MiB (Gemma 3's
/// 262k-token vocabulary makes ~6 MiB); the limit bounds what one corrupt count in a large file
/// can make the reader allocate, since checking counts against the file alone would allow
/// gigabytes.
pub const MAX_HEADER_BYTES: u64 = 256 << 20;
/// Elements reserved up front for a list whose length the file states; longer lists grow as
/// their elements are actually read, so a lying count cannot multiply memory before reading.
const MAX_PREALLOC: usize = 4096;

/// A tensor as the header describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset relative to the data section.
    pub offset: u64,
    pub bytes: u64,
}

/// One GGUF file's header.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the data section (header end rounded up to the alignment).
    pub data_start: u64,
    pub file_bytes: u64,
}

/// Buffer of header reads: large enough for few syscalls, small enough to cache little data.
const HEADER_READ_BYTES: usize = 64 << 10;

impl GgufHeader {
    /// Reads the header of the file at `path`.
    pub fn open(path: &Path) -> Result<GgufHeader, GgufError> {
        let err = |e: std::io::Error| GgufError {
            path: path.to_path_buf(),
            offset: None,
            kind: K::Io(e.into()),
        };
        let file = infile::open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        // Reading the header must not pull tensor data into the page cache: the runtime streams
        // that data with O_DIRECT and a budget that excludes cached copies. Small reads and no
        // kernel readahead keep the cached bytes beyond the header under one buffer (64 KiB).
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: advisory call on a descriptor we own; failure only means more readahead.
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
        }
        parse(BufReader::with_capacity(HEADER_READ_BYTES, file), len, path)
    }

    /// Reads a header from bytes in memory (tests and fuzzing); `name` is used in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<GgufHeader, GgufError> {
        parse(bytes, bytes.len() as u64, Path::new(name))
    }

    /// Absolute file offset of a tensor's data.
    pub fn absolute_offset(&self, t: &TensorInfo) -> u64 {
        self.data_start + t.offset
    }
}

/// A reader that knows how many bytes the file has left, so it can refuse impossible counts.
struct Src<'p, R> {
    r: R,
    pos: u64,
    len: u64,
    path: &'p Path,
}

impl<R: Read> Src<'_, R> {
    fn fail(&self, kind: K) -> GgufError {
        self.fail_at(self.pos, kind)
    }

    /// An error located at `at`, the start of the field that is wrong.
    fn fail_at(&self, at: u64, kind: K) -> GgufError {
        GgufError {
            path: self.path.to_path_buf(),
            offset: Some(at),
            kind,
        }
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        if self.remaining() < N as u64 {
            return Err(self.fail(K::Truncated { what: what() }));
        }
        self.r.read_exact(&mut b).map_err(|e| self.io(e, what))?;
        self.pos += N as u64;
        Ok(b)
    }

    fn io(&self, e: std::io::Error, what: &dyn Fn() -> String) -> GgufError {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            self.fail(K::Truncated { what: what() })
        } else {
            self.fail(K::Io(e.into()))
        }
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    /// Checks that `count` items of at least `min_bytes` each fit in the rest of the file and
    /// under [`MAX_HEADER_BYTES`]; only then may the caller allocate or loop `count` times.
    fn check_count(
        &self,
        count: u64,
        min_bytes: u64,
        what: &dyn Fn() -> String,
    ) -> Result<usize, GgufError> {
        let min_bytes = min_bytes.max(1);
        let limit = self.remaining() / min_bytes;
        if count > limit {
            return Err(self.fail(K::TooLarge {
                what: what(),
                value: count,
                limit,
            }));
        }
        let limit = MAX_HEADER_BYTES.saturating_sub(self.pos) / min_bytes;
        if count > limit {
            return Err(self.fail(K::HeaderTooLarge {
                what: what(),
                value: count,
                limit,
            }));
        }
        // Below MAX_HEADER_BYTES, so it fits in usize on any target.
        Ok(count as usize)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(&|| format!("the length of {}", what()))?;
        let n = self.check_count(len, 1, &|| format!("the length of {}", what()))?;
        let mut buf = vec![0u8; n];
        self.r.read_exact(&mut buf).map_err(|e| self.io(e, what))?;
        let start = self.pos;
        self.pos += len;
        String::from_utf8(buf).map_err(|_| self.fail_at(start, K::BadUtf8 { what: what() }))
    }

    fn value(&mut self, ty: ValueType, key: &str, depth: u32) -> Result<Value, GgufError> {
        let what = || format!("the value of {key:?}");
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.bytes(&what)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.bytes(&what)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.bytes(&what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.bytes(&what)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.bytes(&what)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.bytes(&what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.bytes(&what)?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.bytes(&what)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.bytes(&what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.bytes(&what)?)),
            ValueType::Bool => {
                let [b] = self.bytes(&what)?;
                if b > 1 {
                    let kind = K::BadBool {
                        key: key.to_string(),
                        byte: b,
                    };
                    return Err(self.fail_at(self.pos - 1, kind));
                }
                Value::Bool(b == 1)
            }
            ValueType::String => Value::String(self.string(&what)?),
            ValueType::Array => Value::Array(self.array(key, depth + 1)?),
        })
    }

    fn value_type(&mut self, key: &str) -> Result<ValueType, GgufError> {
        let at = self.pos;
        let id = self.u32(&|| format!("the type of {key:?}"))?;
        ValueType::from_id(id).ok_or_else(|| {
            self.fail_at(
                at,
                K::UnknownValueType {
                    key: key.to_string(),
                    id,
                },
            )
        })
    }

    fn array(&mut self, key: &str, depth: u32) -> Result<Array, GgufError> {
        if depth > MAX_NESTING {
            return Err(self.fail(K::NestingTooDeep {
                key: key.to_string(),
            }));
        }
        let ty = self.value_type(key)?;
        let what = || format!("the element count of array {key:?}");
        let count = self.u64(&what)?;
        let n = self.check_count(count, ty.min_encoded_bytes(), &what)?;
        let reserve = n.min(MAX_PREALLOC);
        macro_rules! fixed {
            ($variant:ident, $t:ty) => {{
                // n elements fit in the file (checked above), so one bulk read is bounded.
                const W: usize = std::mem::size_of::<$t>();
                let mut raw = vec![0u8; n * W];
                self.r
                    .read_exact(&mut raw)
                    .map_err(|e| self.io(e, &|| format!("the elements of array {key:?}")))?;
                self.pos += raw.len() as u64;
                Array::$variant(
                    raw.chunks_exact(W)
                        .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                )
            }};
        }
        Ok(match ty {
            ValueType::U8 => fixed!(U8, u8),
            ValueType::I8 => fixed!(I8, i8),
            ValueType::U16 => fixed!(U16, u16),
            ValueType::I16 => fixed!(I16, i16),
            ValueType::U32 => fixed!(U32, u32),
            ValueType::I32 => fixed!(I32, i32),
            ValueType::F32 => fixed!(F32, f32),
            ValueType::U64 => fixed!(U64, u64),
            ValueType::I64 => fixed!(I64, i64),
            ValueType::F64 => fixed!(F64, f64),
            ValueType::Bool => {
                let mut v = Vec::with_capacity(reserve);
                for _ in 0..n {
                    match self.value(ValueType::Bool, key, depth)? {
                        Value::Bool(b) => v.push(b),
                        _ => unreachable!("value(Bool) returns a Bool"),
                    }
                }
                Array::Bool(v)
            }
            ValueType::String => {
                let mut v = Vec::with_capacity(reserve);
                for i in 0..n {
                    v.push(self.string(&|| format!("element {i} of array {key:?}"))?);
                }
                Array::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(reserve);
                for _ in 0..n {
                    v.push(self.array(key, depth + 1)?);
                }
                Array::Array(v)
            }
        })
    }
}

fn parse<R: Read>(r: R, len: u64, path: &Path) -> Result<GgufHeader, GgufError> {
    let mut s = Src {
        r,
        pos: 0,
        len,
        path,
    };
    let magic: [u8; 4] = s.bytes(&|| "the magic number".into())?;
    if &magic != MAGIC {
        s.pos = 0;
        return Err(s.fail(K::BadMagic(magic)));
    }
    let version = s.u32(&|| "the version".into())?;
    if version != 2 && version != 3 {
        s.pos = 4;
        // A big-endian file's version reads byte-swapped here.
        let kind = if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
            K::BigEndian
        } else {
            K::UnsupportedVersion(version)
        };
        return Err(s.fail(kind));
    }
    let n_tensors = s.u64(&|| "the tensor count".into())?;
    let n_kv = s.u64(&|| "the metadata count".into())?;
    // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info 8 + 4 + 4 + 8.
    let n_kv = s.check_count(n_kv, 13, &|| "the metadata count".into())?;
    let n_tensors = s.check_count(n_tensors, 24, &|| "the tensor count".into())?;

    let mut kv = Vec::with_capacity(n_kv.min(MAX_PREALLOC));
    let mut keys = std::collections::HashSet::with_capacity(n_kv.min(MAX_PREALLOC));
    for i in 0..n_kv {
        let key_at = s.pos;
        let key = s.string(&|| format!("metadata key {i}"))?;
        if !keys.insert(key.clone()) {
            return Err(s.fail_at(key_at, K::DuplicateKey { key }));
        }
        let ty = s.value_type(&key)?;
        let value = s.value(ty, &key, 0)?;
        kv.push((key, value));
    }
    drop(keys);
    let metadata = Metadata(kv);

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if a.is_power_of_two() => *a as u64,
        Some(Value::U32(a)) => {
            return Err(s.fail(K::BadAlignment(AlignmentError::NotPowerOfTwo(*a))))
        }
        Some(v) => return Err(s.fail(K::BadAlignment(AlignmentError::NotU32(v.value_type())))),
    };

    let mut tensors = Vec::with_capacity(n_tensors.min(MAX_PREALLOC));
    let mut names = std::collections::HashSet::with_capacity(n_tensors.min(MAX_PREALLOC));
    for i in 0..n_tensors {
        let name_at = s.pos;
        let name = s.string(&|| format!("the name of tensor {i}"))?;
        let dims_at = s.pos;
        let n_dims = s.u32(&|| format!("the dimension count of tensor {name:?}"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(s.fail_at(
                dims_at,
                K::BadDims {
                    tensor: name,
                    problem: DimsError::Count(n_dims),
                },
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(s.u64(&|| format!("the dimensions of tensor {name:?}"))?);
        }
        let type_at = s.pos;
        let type_id = s.u32(&|| format!("the type of tensor {name:?}"))?;
        let ggml_type = GgmlType::try_from(type_id).map_err(|source| {
            s.fail_at(
                type_at,
                K::UnknownTensorType {
                    tensor: name.clone(),
                    source,
                },
            )
        })?;
        let offset_at = s.pos;
        let offset = s.u64(&|| format!("the data offset of tensor {name:?}"))?;
        let bytes = tensor_bytes(ggml_type, &dims).map_err(|problem| {
            s.fail_at(
                dims_at,
                K::BadDims {
                    tensor: name.clone(),
                    problem,
                },
            )
        })?;
        if offset % alignment != 0 {
            return Err(s.fail_at(
                offset_at,
                K::Misaligned {
                    tensor: name,
                    offset,
                    alignment,
                },
            ));
        }
        if !names.insert(name.clone()) {
            return Err(s.fail_at(name_at, K::DuplicateTensor(name)));
        }
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            bytes,
        });
    }
    drop(names);

    // pos <= len, a real file or slice length, so rounding up by at most 2^31 cannot overflow.
    let data_start = s.pos.div_ceil(alignment) * alignment;
    check_layout(&tensors, data_start, len, path)?;
    Ok(GgufHeader {
        path: path.to_path_buf(),
        version,
        metadata,
        tensors,
        alignment,
        data_start,
        file_bytes: len,
    })
}

/// A tensor's data size, with ggml's limits: every dimension and the element count fit in an
/// int64 (ggml's `ne` type), rows are whole quantization blocks and the size fits in 64 bits.
fn tensor_bytes(ty: GgmlType, dims: &[u64]) -> Result<u64, DimsError> {
    let elements = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    if dims.iter().any(|&d| d > i64::MAX as u64) || elements.is_none_or(|n| n > i64::MAX as u64) {
        return Err(DimsError::ElementsOverflow(dims.to_vec()));
    }
    if dims[0] % ty.block_size() != 0 {
        return Err(DimsError::PartialBlock {
            ty,
            row: dims[0],
            block: ty.block_size(),
        });
    }
    ty.tensor_bytes(dims)
        .ok_or_else(|| DimsError::BytesOverflow {
            ty,
            dims: dims.to_vec(),
        })
}

/// Every tensor's data lies inside the file and no two overlap.
fn check_layout(
    tensors: &[TensorInfo],
    data_start: u64,
    file_bytes: u64,
    path: &Path,
) -> Result<(), GgufError> {
    let fail = |kind| GgufError {
        path: path.to_path_buf(),
        offset: None,
        kind,
    };
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    for t in &order {
        let end = data_start
            .checked_add(t.offset)
            .and_then(|o| o.checked_add(t.bytes));
        match end {
            Some(end) if end <= file_bytes => {}
            _ => {
                let end = end.unwrap_or(u64::MAX);
                return Err(fail(K::OutsideFile {
                    tensor: t.name.clone(),
                    end,
                    file_bytes,
                }));
            }
        }
    }
    // Compare each tensor with the furthest-reaching one before it, not just its neighbour: a
    // zero-sized tensor (which occupies nothing and overlaps nothing) or a short one between two
    // others must not hide their overlap. Ends cannot overflow: each was checked above.
    let mut reach: Option<(&TensorInfo, u64)> = None;
    for t in order.into_iter().filter(|t| t.bytes > 0) {
        if let Some((prev, end)) = reach {
            if t.offset < end {
                return Err(fail(K::Overlap {
                    first: prev.name.clone(),
                    second: t.name.clone(),
                }));
            }
        }
        let end = t.offset + t.bytes;
        if reach.is_none_or(|(_, e)| end > e) {
            reach = Some((t, end));
        }
    }
    Ok(())
}
