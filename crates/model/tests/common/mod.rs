//! Hand-written GGUF bytes for reader tests: a little-endian writer that follows the GGUF spec
//! field by field, independent of the crate's own writer, so malformed files can be made exactly.

#![allow(dead_code)]

use gguf::GgmlType;
use gguf::{Array, Value};

/// Little-endian GGUF byte writer; `len()` gives the offset of the next field.
#[derive(Default)]
pub struct W {
    pub buf: Vec<u8>,
}

impl W {
    pub fn new() -> W {
        W::default()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn raw(&mut self, b: &[u8]) -> &mut W {
        self.buf.extend_from_slice(b);
        self
    }

    pub fn u8(&mut self, v: u8) -> &mut W {
        self.raw(&[v])
    }

    pub fn u32(&mut self, v: u32) -> &mut W {
        self.raw(&v.to_le_bytes())
    }

    pub fn u64(&mut self, v: u64) -> &mut W {
        self.raw(&v.to_le_bytes())
    }

    /// A GGUF string: u64 byte length, then the bytes (not NUL-terminated).
    pub fn str_bytes(&mut self, s: &[u8]) -> &mut W {
        self.u64(s.len() as u64).raw(s)
    }

    pub fn str(&mut self, s: &str) -> &mut W {
        self.str_bytes(s.as_bytes())
    }

    /// Magic, version, tensor count, key/value count.
    pub fn header(&mut self, version: u32, n_tensors: u64, n_kv: u64) -> &mut W {
        self.raw(b"GGUF").u32(version).u64(n_tensors).u64(n_kv)
    }

    /// One metadata entry: key, u32 value type, value.
    pub fn kv(&mut self, key: &str, v: &Value) -> &mut W {
        self.str(key).u32(v.value_type() as u32).value(v)
    }

    /// A value's payload (its type id is written by the caller).
    pub fn value(&mut self, v: &Value) -> &mut W {
        match v {
            Value::U8(x) => self.u8(*x),
            Value::I8(x) => self.raw(&x.to_le_bytes()),
            Value::U16(x) => self.raw(&x.to_le_bytes()),
            Value::I16(x) => self.raw(&x.to_le_bytes()),
            Value::U32(x) => self.u32(*x),
            Value::I32(x) => self.raw(&x.to_le_bytes()),
            Value::F32(x) => self.raw(&x.to_le_bytes()),
            Value::Bool(x) => self.u8(*x as u8),
            Value::String(s) => self.str(s),
            Value::Array(a) => self.array(a),
            Value::U64(x) => self.u64(*x),
            Value::I64(x) => self.raw(&x.to_le_bytes()),
            Value::F64(x) => self.raw(&x.to_le_bytes()),
        }
    }

    /// An array: u32 element type, u64 count, elements (nested arrays repeat this layout).
    pub fn array(&mut self, a: &Array) -> &mut W {
        self.u32(a.elem_type() as u32).u64(a.len() as u64);
        macro_rules! each {
            ($v:expr) => {{
                for x in $v {
                    self.raw(&x.to_le_bytes());
                }
                self
            }};
        }
        match a {
            Array::U8(v) => each!(v),
            Array::I8(v) => each!(v),
            Array::U16(v) => each!(v),
            Array::I16(v) => each!(v),
            Array::U32(v) => each!(v),
            Array::I32(v) => each!(v),
            Array::F32(v) => each!(v),
            Array::U64(v) => each!(v),
            Array::I64(v) => each!(v),
            Array::F64(v) => each!(v),
            Array::Bool(v) => {
                for &b in v {
                    self.u8(b as u8);
                }
                self
            }
            Array::String(v) => {
                for s in v {
                    self.str(s);
                }
                self
            }
            Array::Array(v) => {
                for inner in v {
                    self.array(inner);
                }
                self
            }
        }
    }

    /// One tensor info: name, u32 n_dims, u64 dims, u32 ggml type, u64 offset into the data section.
    pub fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> &mut W {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(type_id).u64(offset)
    }

    /// Zero bytes up to the next multiple of `alignment`.
    pub fn pad(&mut self, alignment: u64) -> &mut W {
        let a = alignment as usize;
        let n = self.len().div_ceil(a) * a - self.len();
        self.buf.resize(self.len() + n, 0);
        self
    }

    pub fn zeros(&mut self, n: u64) -> &mut W {
        self.buf.resize(self.len() + n as usize, 0);
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.buf.clone()
    }
}

/// A tensor for [`Gguf`].
#[derive(Clone)]
pub struct Tensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub offset: u64,
}

/// A well-formed GGUF file: metadata, tensor infos, padding and a zero-filled data section
/// large enough for every tensor.
pub struct Gguf {
    pub version: u32,
    pub kvs: Vec<(String, Value)>,
    pub tensors: Vec<Tensor>,
}

impl Gguf {
    pub fn new(version: u32) -> Gguf {
        Gguf {
            version,
            kvs: Vec::new(),
            tensors: Vec::new(),
        }
    }

    pub fn kv(mut self, key: &str, v: Value) -> Gguf {
        self.kvs.push((key.to_string(), v));
        self
    }

    /// Adds a tensor placed after the previous one, at the next multiple of `alignment`.
    pub fn tensor(mut self, name: &str, ty: GgmlType, dims: &[u64]) -> Gguf {
        let align = self.alignment();
        let offset = self.data_len().div_ceil(align) * align;
        self.tensors.push(Tensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            offset,
        });
        self
    }

    pub fn alignment(&self) -> u64 {
        match self.kvs.iter().find(|(k, _)| k == "general.alignment") {
            Some((_, Value::U32(a))) if a.is_power_of_two() => *a as u64,
            _ => 32,
        }
    }

    /// Bytes of the data section: the end of the furthest tensor.
    pub fn data_len(&self) -> u64 {
        self.tensors
            .iter()
            .map(|t| t.offset + t.ty.tensor_bytes(&t.dims).unwrap())
            .max()
            .unwrap_or(0)
    }

    /// The header alone (no padding, no data): where the data section's padding starts.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut w = W::new();
        w.header(
            self.version,
            self.tensors.len() as u64,
            self.kvs.len() as u64,
        );
        for (k, v) in &self.kvs {
            w.kv(k, v);
        }
        for t in &self.tensors {
            w.tensor(&t.name, &t.dims, t.ty.id(), t.offset);
        }
        w.buf
    }

    /// The whole file.
    pub fn build(&self) -> Vec<u8> {
        let mut w = W {
            buf: self.header_bytes(),
        };
        w.pad(self.alignment()).zeros(self.data_len());
        w.buf
    }
}

/// One value of every metadata type, including nested arrays, empty arrays and non-ASCII text.
pub fn every_value_type() -> Vec<(String, Value)> {
    let kvs = vec![
        ("t.u8", Value::U8(0xfe)),
        ("t.i8", Value::I8(-7)),
        ("t.u16", Value::U16(0xbeef)),
        ("t.i16", Value::I16(-12345)),
        ("t.u32", Value::U32(0xdead_beef)),
        ("t.i32", Value::I32(-1_000_000)),
        ("t.f32", Value::F32(-1.5e-3)),
        ("t.bool.true", Value::Bool(true)),
        ("t.bool.false", Value::Bool(false)),
        ("t.string", Value::String("héllo, wörld ✓".into())),
        ("t.string.empty", Value::String(String::new())),
        ("t.u64", Value::U64(u64::MAX - 1)),
        ("t.i64", Value::I64(i64::MIN + 3)),
        ("t.f64", Value::F64(std::f64::consts::PI)),
        ("a.u8", Value::Array(Array::U8(vec![1, 2, 255]))),
        ("a.i8", Value::Array(Array::I8(vec![-128, 0, 127]))),
        ("a.u16", Value::Array(Array::U16(vec![1, 65535]))),
        ("a.i16", Value::Array(Array::I16(vec![-32768, 32767]))),
        ("a.u32", Value::Array(Array::U32(vec![0, u32::MAX]))),
        (
            "a.i32",
            Value::Array(Array::I32(vec![i32::MIN, -1, i32::MAX])),
        ),
        (
            "a.f32",
            Value::Array(Array::F32(vec![0.5, -0.25, f32::MAX])),
        ),
        ("a.bool", Value::Array(Array::Bool(vec![true, false, true]))),
        (
            "a.string",
            Value::Array(Array::String(vec!["a".into(), String::new(), "ünï".into()])),
        ),
        ("a.u64", Value::Array(Array::U64(vec![u64::MAX]))),
        ("a.i64", Value::Array(Array::I64(vec![i64::MIN, i64::MAX]))),
        ("a.f64", Value::Array(Array::F64(vec![1e300, -0.0]))),
        ("a.empty", Value::Array(Array::F32(vec![]))),
        (
            "a.nested",
            Value::Array(Array::Array(vec![
                Array::U32(vec![1, 2]),
                Array::String(vec!["x".into()]),
                Array::Array(vec![Array::Bool(vec![true]), Array::I64(vec![])]),
                Array::Array(vec![]),
            ])),
        ),
    ];
    kvs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A small valid model: every value type, an alignment key and tensors of several ggml types.
pub fn sample(version: u32) -> Gguf {
    let mut g = Gguf::new(version).kv("general.architecture", Value::String("llama".into()));
    for (k, v) in every_value_type() {
        g = g.kv(&k, v);
    }
    g.kv("general.alignment", Value::U32(64))
        .tensor("token_embd.weight", GgmlType::Q4_K, &[256, 4])
        .tensor("blk.0.attn_norm.weight", GgmlType::F32, &[7])
        .tensor("blk.0.ffn_up.weight", GgmlType::Q8_0, &[64, 3, 1, 2])
        .tensor("output.weight", GgmlType::F16, &[256, 4])
}
