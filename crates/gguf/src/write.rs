//! GGUF v3 writer: metadata of every value type (nested arrays included), tensor infos, alignment
//! padding, and tensor data streamed from a callback so a model never has to sit in memory.

use super::read::{DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
use super::value::{Array, Metadata, Value};
use crate::ggml_type::GgmlType;
use std::collections::HashSet;
use std::io::{self, Write};

/// A tensor to write: its name, ggml dims (dims[0] is the row) and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
}

impl TensorSpec {
    pub fn new(name: impl Into<String>, dims: Vec<u64>, ggml_type: GgmlType) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dims,
            ggml_type,
        }
    }

    /// Bytes of the tensor's data, or `None` when the row is not whole blocks or the size overflows.
    pub fn bytes(&self) -> Option<u64> {
        self.ggml_type.tensor_bytes(&self.dims)
    }
}

/// Why a GGUF file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GgufWriteError {
    #[error("metadata key {key:?}: {detail}")]
    Metadata { key: String, detail: String },
    #[error("tensor {tensor:?}: {detail}")]
    Tensor { tensor: String, detail: String },
    #[error(
        "tensor {tensor:?}: the data callback wrote {written} bytes, the tensor has {expected}"
    )]
    DataLength {
        tensor: String,
        expected: u64,
        written: u64,
    },
    #[error("write failed: {0}")]
    Io(#[from] io::Error),
}

/// Where everything goes in the file, computed before a byte is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufLayout {
    pub alignment: u64,
    /// Bytes of the header (magic to the last tensor info), before the padding to `data_start`.
    pub header_bytes: u64,
    /// Absolute offset of the data section.
    pub data_start: u64,
    /// Each tensor's offset relative to `data_start`, in the order given.
    pub offsets: Vec<u64>,
    /// Each tensor's data size.
    pub sizes: Vec<u64>,
    /// Total file size: every tensor is padded to the alignment, the last one included.
    pub file_bytes: u64,
}

fn align_up(x: u64, alignment: u64) -> Option<u64> {
    x.checked_add(alignment - 1)
        .map(|v| v / alignment * alignment)
}

/// Checks the metadata and tensors and returns the encoded header (without padding) and layout.
pub fn encode_header(
    metadata: &Metadata,
    tensors: &[TensorSpec],
) -> Result<(Vec<u8>, GgufLayout), GgufWriteError> {
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if *a > 0 && a.is_power_of_two() => *a as u64,
        Some(v) => {
            return Err(GgufWriteError::Metadata {
                key: "general.alignment".into(),
                detail: format!("must be a u32 power of two, got {v:?}"),
            })
        }
    };
    let mut keys = HashSet::new();
    let mut buf = Vec::with_capacity(4096);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&3u32.to_le_bytes());
    buf.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    buf.extend_from_slice(&(metadata.0.len() as u64).to_le_bytes());
    for (key, value) in &metadata.0 {
        if !keys.insert(key.as_str()) {
            return Err(GgufWriteError::Metadata {
                key: key.clone(),
                detail: "appears twice".into(),
            });
        }
        put_str(&mut buf, key);
        put_u32(&mut buf, value.value_type() as u32);
        put_value(&mut buf, value);
    }

    let mut names = HashSet::new();
    let (mut offsets, mut sizes) = (
        Vec::with_capacity(tensors.len()),
        Vec::with_capacity(tensors.len()),
    );
    let mut next = 0u64;
    for t in tensors {
        let fail = |detail: String| GgufWriteError::Tensor {
            tensor: t.name.clone(),
            detail,
        };
        if !names.insert(t.name.as_str()) {
            return Err(fail("appears twice".into()));
        }
        if t.dims.is_empty() || t.dims.len() > MAX_DIMS as usize {
            return Err(fail(format!(
                "{} dimensions (1 to {MAX_DIMS} allowed)",
                t.dims.len()
            )));
        }
        if t.dims.iter().any(|&d| d > i64::MAX as u64) {
            return Err(fail(format!("dimension too large in {:?}", t.dims)));
        }
        let bytes = t.bytes().ok_or_else(|| {
            let bs = t.ggml_type.block_size();
            fail(if t.dims[0] % bs != 0 {
                format!(
                    "row length {} is not a multiple of {}'s block size {bs}",
                    t.dims[0], t.ggml_type
                )
            } else {
                format!("size of {:?} overflows 64 bits", t.dims)
            })
        })?;
        put_str(&mut buf, &t.name);
        put_u32(&mut buf, t.dims.len() as u32);
        for &d in &t.dims {
            buf.extend_from_slice(&d.to_le_bytes());
        }
        put_u32(&mut buf, t.ggml_type.id());
        buf.extend_from_slice(&next.to_le_bytes());
        offsets.push(next);
        sizes.push(bytes);
        next = next
            .checked_add(bytes)
            .and_then(|end| align_up(end, alignment))
            .ok_or_else(|| fail("the tensors' total size overflows 64 bits".into()))?;
    }
    let header_bytes = buf.len() as u64;
    let data_start = align_up(header_bytes, alignment).expect("header is small");
    let file_bytes = data_start
        .checked_add(next)
        .ok_or_else(|| GgufWriteError::Tensor {
            tensor: String::new(),
            detail: "file size overflows 64 bits".into(),
        })?;
    Ok((
        buf,
        GgufLayout {
            alignment,
            header_bytes,
            data_start,
            offsets,
            sizes,
            file_bytes,
        },
    ))
}

/// Writes a GGUF v3 file to `out`. `fill(i, tensor, sink)` must write exactly tensor `i`'s bytes to
/// `sink`; it is called once per tensor, in order. Returns the layout written. `out` should be
/// buffered (large tensors are best written in large slices).
pub fn write_gguf<W, F>(
    out: &mut W,
    metadata: &Metadata,
    tensors: &[TensorSpec],
    mut fill: F,
) -> Result<GgufLayout, GgufWriteError>
where
    W: Write,
    F: FnMut(usize, &TensorSpec, &mut dyn Write) -> io::Result<()>,
{
    let (header, layout) = encode_header(metadata, tensors)?;
    out.write_all(&header)?;
    write_zeros(out, layout.data_start - layout.header_bytes)?;
    for (i, t) in tensors.iter().enumerate() {
        let expected = layout.sizes[i];
        let mut sink = Exact {
            inner: &mut *out,
            left: expected,
            attempted: None,
        };
        let result = fill(i, t, &mut sink);
        let wrong_length = |written| GgufWriteError::DataLength {
            tensor: t.name.clone(),
            expected,
            written,
        };
        if let Some(excess) = sink.attempted {
            return Err(wrong_length(expected + excess));
        }
        result?;
        if sink.left != 0 {
            return Err(wrong_length(expected - sink.left));
        }
        let padded = align_up(expected, layout.alignment).expect("checked in encode_header");
        write_zeros(out, padded - expected)?;
    }
    out.flush()?;
    Ok(layout)
}

/// Passes through at most `left` bytes and refuses more, so a wrong callback cannot shift the
/// rest of the file.
struct Exact<'a, W: Write> {
    inner: &'a mut W,
    left: u64,
    /// Set when the callback tried to write past the end: how many bytes it offered beyond it.
    attempted: Option<u64>,
}

impl<W: Write> Write for Exact<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            *self.attempted.get_or_insert(0) += buf.len() as u64 - self.left;
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "tensor data longer than the tensor",
            ));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_zeros<W: Write>(out: &mut W, n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    let mut left = n;
    while left > 0 {
        let k = left.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..k])?;
        left -= k as u64;
    }
    Ok(())
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => buf.push(*x),
        Value::I8(x) => buf.push(*x as u8),
        Value::U16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => buf.push(*x as u8),
        Value::String(s) => put_str(buf, s),
        Value::Array(a) => put_array(buf, a),
        Value::U64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => buf.extend_from_slice(&x.to_le_bytes()),
    }
}

/// An array is its element type, its count, then the elements; a nested array element repeats
/// that form (type, count, elements).
fn put_array(buf: &mut Vec<u8>, a: &Array) {
    put_u32(buf, a.elem_type() as u32);
    buf.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! each {
        ($v:expr, $x:ident => $e:expr) => {
            for $x in $v {
                $e;
            }
        };
    }
    match a {
        Array::U8(v) => buf.extend_from_slice(v),
        Array::I8(v) => each!(v, x => buf.push(*x as u8)),
        Array::U16(v) => each!(v, x => buf.extend_from_slice(&x.to_le_bytes())),
        Array::I16(v) => each!(v, x => buf.extend_from_slice(&x.to_le_bytes())),
        Array::U32(v) => each!(v, x => buf.extend_from_slice(&x.to_le_bytes())),
        Array::I32(v) => each!(v, x => buf.extend_from_slice(&x.to_le_bytes())),
        Array::F32(v) => each!(v, x => buf.extend_from_slice(&x.to_le_bytes())),
        Array::Bool(v) => each!(v, x => buf.push(*x as u8)),
        Array::String(v) => each!(v, s => put_str(buf, s)),
        Array::Array(v) => each!(v, inner => put_array(buf, inner)),
        Array::U64(v) => each!(v, x => buf.extend_from_slice(&x.to_le_bytes())),
        Array::I64(v) => each!(v, x => buf.extend_from_slice(&x.to_le_bytes())),
        Array::F64(v) => each!(v, x => buf.extend_from_slice(&x.to_le_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::GgufHeader;
    use super::*;

    fn every_value_type() -> Metadata {
        let mut md = Metadata::default();
        md.insert("general.architecture", Value::String("llama".into()));
        md.insert("u8", Value::U8(200));
        md.insert("i8", Value::I8(-5));
        md.insert("u16", Value::U16(60000));
        md.insert("i16", Value::I16(-300));
        md.insert("u32", Value::U32(4_000_000_000));
        md.insert("i32", Value::I32(-7));
        md.insert("f32", Value::F32(1.5));
        md.insert("bool", Value::Bool(true));
        md.insert("string", Value::String("héllo".into()));
        md.insert("u64", Value::U64(u64::MAX));
        md.insert("i64", Value::I64(i64::MIN));
        md.insert("f64", Value::F64(-2.25));
        md.insert("arr.u8", Value::Array(Array::U8(vec![1, 2, 3])));
        md.insert("arr.i8", Value::Array(Array::I8(vec![-1, 2])));
        md.insert("arr.u16", Value::Array(Array::U16(vec![9])));
        md.insert("arr.i16", Value::Array(Array::I16(vec![-9, 9])));
        md.insert("arr.u32", Value::Array(Array::U32(vec![])));
        md.insert("arr.i32", Value::Array(Array::I32(vec![-1, 6])));
        md.insert("arr.f32", Value::Array(Array::F32(vec![0.5, -0.25])));
        md.insert("arr.bool", Value::Array(Array::Bool(vec![true, false])));
        md.insert(
            "arr.string",
            Value::Array(Array::String(vec!["a".into(), String::new(), "ccc".into()])),
        );
        md.insert("arr.u64", Value::Array(Array::U64(vec![1 << 40])));
        md.insert("arr.i64", Value::Array(Array::I64(vec![-(1 << 40)])));
        md.insert("arr.f64", Value::Array(Array::F64(vec![3.0])));
        md.insert(
            "arr.nested",
            Value::Array(Array::Array(vec![
                Array::U32(vec![1, 2]),
                Array::Array(vec![
                    Array::String(vec!["deep".into()]),
                    Array::Bool(vec![]),
                ]),
            ])),
        );
        md.insert("general.alignment", Value::U32(64));
        md
    }

    fn tensors() -> Vec<TensorSpec> {
        vec![
            TensorSpec::new("a", vec![3], GgmlType::F32),
            TensorSpec::new("b", vec![64, 2], GgmlType::Q4_0),
            TensorSpec::new("c", vec![32, 2, 3], GgmlType::Q8_0),
            TensorSpec::new("d", vec![5, 1], GgmlType::F16),
        ]
    }

    fn write(md: &Metadata, ts: &[TensorSpec]) -> (Vec<u8>, GgufLayout) {
        let mut out = Vec::new();
        let layout = write_gguf(&mut out, md, ts, |i, t, sink| {
            // Each tensor is filled with its index + 1, so misplaced data shows.
            let n = t.bytes().unwrap() as usize;
            sink.write_all(&vec![i as u8 + 1; n])
        })
        .unwrap();
        (out, layout)
    }

    #[test]
    fn reader_reads_back_every_value_type_and_tensor() {
        let (md, ts) = (every_value_type(), tensors());
        let (bytes, layout) = write(&md, &ts);
        assert_eq!(bytes.len() as u64, layout.file_bytes);
        let h = GgufHeader::from_bytes(&bytes, "mem.gguf").unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.metadata, md);
        assert_eq!(h.alignment, 64);
        assert_eq!(h.data_start, layout.data_start);
        assert_eq!(h.data_start % 64, 0);
        for (i, (t, spec)) in h.tensors.iter().zip(&ts).enumerate() {
            assert_eq!(
                (&t.name, &t.dims, t.ggml_type),
                (&spec.name, &spec.dims, spec.ggml_type)
            );
            assert_eq!(t.offset, layout.offsets[i]);
            assert_eq!(t.offset % 64, 0);
            let start = h.absolute_offset(t) as usize;
            let data = &bytes[start..start + t.bytes as usize];
            assert!(
                data.iter().all(|&b| b == i as u8 + 1),
                "tensor {} data misplaced",
                t.name
            );
        }
        // Padding after the last tensor brings the file to a multiple of the alignment.
        assert_eq!(bytes.len() % 64, 0);
    }

    #[test]
    fn default_alignment_is_32_and_padding_is_zero() {
        let mut md = Metadata::default();
        md.insert("k", Value::String("v".into()));
        let (bytes, layout) = write(&md, &tensors());
        assert_eq!(layout.alignment, 32);
        assert!(
            bytes[layout.header_bytes as usize..layout.data_start as usize]
                .iter()
                .all(|&b| b == 0)
        );
        // Tensor a is 12 bytes, padded to 32 with zeros.
        let a_end = (layout.data_start + 12) as usize;
        assert!(bytes[a_end..a_end + 20].iter().all(|&b| b == 0));
        // a: 12 bytes -> 32; b: 2x2 Q4_0 blocks = 72 -> 96; c: 6 Q8_0 blocks = 204 -> 224.
        assert_eq!(layout.offsets, vec![0, 32, 32 + 96, 32 + 96 + 224]);
    }

    #[test]
    fn bad_input_is_refused_with_the_name() {
        let md = Metadata::default();
        let err = |ts: Vec<TensorSpec>| {
            write_gguf(&mut Vec::new(), &md, &ts, |_, _, _| Ok(()))
                .unwrap_err()
                .to_string()
        };
        assert!(err(vec![TensorSpec::new("q", vec![33], GgmlType::Q4_0)])
            .contains("\"q\": row length 33"));
        assert!(
            err(vec![TensorSpec::new("e", vec![], GgmlType::F32)]).contains("\"e\": 0 dimensions")
        );
        assert!(err(vec![TensorSpec::new("f", vec![1; 5], GgmlType::F32)]).contains("5 dimensions"));
        let dup = vec![
            TensorSpec::new("x", vec![1], GgmlType::F32),
            TensorSpec::new("x", vec![1], GgmlType::F32),
        ];
        assert!(err(dup).contains("\"x\": appears twice"));
        let mut bad = Metadata::default();
        bad.insert("general.alignment", Value::U32(48));
        let e = write_gguf(&mut Vec::new(), &bad, &[], |_, _, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("general.alignment") && e.contains("power of two"),
            "{e}"
        );
        let mut twice = Metadata::default();
        twice.0.push(("k".into(), Value::U8(1)));
        twice.0.push(("k".into(), Value::U8(2)));
        let e = write_gguf(&mut Vec::new(), &twice, &[], |_, _, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"k\": appears twice"), "{e}");
    }

    #[test]
    fn callback_writing_the_wrong_length_is_an_error() {
        let ts = vec![TensorSpec::new("t", vec![8], GgmlType::F32)];
        let md = Metadata::default();
        let short =
            write_gguf(&mut Vec::new(), &md, &ts, |_, _, s| s.write_all(&[0; 31])).unwrap_err();
        assert!(
            matches!(
                short,
                GgufWriteError::DataLength {
                    expected: 32,
                    written: 31,
                    ..
                }
            ),
            "{short}"
        );
        let long =
            write_gguf(&mut Vec::new(), &md, &ts, |_, _, s| s.write_all(&[0; 40])).unwrap_err();
        assert!(
            matches!(
                long,
                GgufWriteError::DataLength {
                    expected: 32,
                    written: 40,
                    ..
                }
            ),
            "{long}"
        );
        let mut chunks = 0;
        let long2 = write_gguf(&mut Vec::new(), &md, &ts, |_, _, s| {
            chunks += 1;
            s.write_all(&[0; 20])?;
            s.write_all(&[0; 20])
        })
        .unwrap_err();
        assert!(
            matches!(long2, GgufWriteError::DataLength { written: 40, .. }),
            "{long2}"
        );
        assert_eq!(chunks, 1);
    }

    #[test]
    fn io_errors_from_the_callback_pass_through() {
        let ts = vec![TensorSpec::new("t", vec![8], GgmlType::F32)];
        let e = write_gguf(&mut Vec::new(), &Metadata::default(), &ts, |_, _, _| {
            Err(io::Error::other("disk gone"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("disk gone"));
    }
}
