//! NVIDIA GPUs through the CUDA driver API, loaded at run time (dlopen of libcuda.so.1) so the
//! binary needs no CUDA at build time: device name and memory, and pinned host<->device and
//! device<->device copy bandwidth.

use super::{interrupt, MeasureError};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::time::Instant;

/// What was read and measured on device 0.
#[derive(Debug, Clone)]
pub struct CudaGpu {
    pub name: String,
    pub device_count: i32,
    pub total_bytes: u64,
    /// Free device memory right after creating a context: what one process can use.
    pub free_bytes: u64,
    pub sm_count: i32,
    pub clock_khz: i32,
    pub compute_capability: (i32, i32),
    pub integrated: bool,
    pub h2d_gbps: f64,
    pub d2h_gbps: f64,
    /// Device-to-device copy, bytes read plus written per second.
    pub d2d_gbps: f64,
    pub copy_bytes: usize,
}

/// Why the CUDA driver could not be used, or a call to it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CudaProbeError {
    /// libcuda.so.1 cannot be loaded; the text is `dlerror`'s.
    #[error("no CUDA driver (dlopen libcuda.so.1: {0})")]
    LibraryNotFound(String),
    #[error("libcuda.so.1 lacks {0} (driver too old?)")]
    SymbolMissing(&'static str),
    /// A driver call returned `code`; `text` is `cuGetErrorString`'s description.
    #[error("{what} failed: CUDA error {code} ({text})")]
    CallFailed {
        what: &'static str,
        code: i32,
        text: String,
    },
    #[error("CUDA driver found, but no CUDA device")]
    NoDevice,
    #[error("the CUDA backend is probed on Linux only")]
    Unsupported,
}

/// `Ok(Err(why))` when there is no usable CUDA driver or device.
pub fn probe(
    copy_bytes: usize,
    reps: usize,
) -> Result<Result<CudaGpu, CudaProbeError>, MeasureError> {
    let api = match Api::load() {
        Ok(api) => api,
        Err(why) => return Ok(Err(why)),
    };
    // SAFETY: the function pointers come from libcuda with the driver API's documented signatures.
    unsafe { measure(&api, copy_bytes, reps) }
}

type CuResult = c_int;
type CuDevice = c_int;
type CuContext = *mut c_void;
type CuDevicePtr = u64;

const ATTR_CLOCK_RATE: c_int = 13;
const ATTR_MULTIPROCESSOR_COUNT: c_int = 16;
const ATTR_INTEGRATED: c_int = 18;
const ATTR_CC_MAJOR: c_int = 75;
const ATTR_CC_MINOR: c_int = 76;

struct Api {
    _lib: *mut c_void,
    init: unsafe extern "C" fn(c_uint) -> CuResult,
    device_get_count: unsafe extern "C" fn(*mut c_int) -> CuResult,
    device_get: unsafe extern "C" fn(*mut CuDevice, c_int) -> CuResult,
    device_get_name: unsafe extern "C" fn(*mut c_char, c_int, CuDevice) -> CuResult,
    device_total_mem: unsafe extern "C" fn(*mut usize, CuDevice) -> CuResult,
    device_get_attribute: unsafe extern "C" fn(*mut c_int, c_int, CuDevice) -> CuResult,
    ctx_create: unsafe extern "C" fn(*mut CuContext, c_uint, CuDevice) -> CuResult,
    ctx_destroy: unsafe extern "C" fn(CuContext) -> CuResult,
    ctx_synchronize: unsafe extern "C" fn() -> CuResult,
    mem_get_info: unsafe extern "C" fn(*mut usize, *mut usize) -> CuResult,
    mem_alloc: unsafe extern "C" fn(*mut CuDevicePtr, usize) -> CuResult,
    mem_free: unsafe extern "C" fn(CuDevicePtr) -> CuResult,
    mem_host_alloc: unsafe extern "C" fn(*mut *mut c_void, usize, c_uint) -> CuResult,
    mem_free_host: unsafe extern "C" fn(*mut c_void) -> CuResult,
    memcpy_htod: unsafe extern "C" fn(CuDevicePtr, *const c_void, usize) -> CuResult,
    memcpy_dtoh: unsafe extern "C" fn(*mut c_void, CuDevicePtr, usize) -> CuResult,
    memcpy_dtod: unsafe extern "C" fn(CuDevicePtr, CuDevicePtr, usize) -> CuResult,
    get_error_string: unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult,
}

impl Api {
    #[cfg(target_os = "linux")]
    fn load() -> Result<Api, CudaProbeError> {
        // SAFETY: dlopen/dlsym with NUL-terminated names; each symbol is cast to the signature
        // the CUDA driver API documents for it.
        unsafe {
            let lib = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if lib.is_null() {
                let err = libc::dlerror();
                let why = if err.is_null() {
                    "unknown error".into()
                } else {
                    CStr::from_ptr(err).to_string_lossy().into_owned()
                };
                return Err(CudaProbeError::LibraryNotFound(why));
            }
            macro_rules! sym {
                ($name:literal) => {
                    symbol(lib, concat!($name, "\0"))?
                };
            }
            Ok(Api {
                _lib: lib,
                init: sym!("cuInit"),
                device_get_count: sym!("cuDeviceGetCount"),
                device_get: sym!("cuDeviceGet"),
                device_get_name: sym!("cuDeviceGetName"),
                device_total_mem: sym!("cuDeviceTotalMem_v2"),
                device_get_attribute: sym!("cuDeviceGetAttribute"),
                ctx_create: sym!("cuCtxCreate_v2"),
                ctx_destroy: sym!("cuCtxDestroy_v2"),
                ctx_synchronize: sym!("cuCtxSynchronize"),
                mem_get_info: sym!("cuMemGetInfo_v2"),
                mem_alloc: sym!("cuMemAlloc_v2"),
                mem_free: sym!("cuMemFree_v2"),
                mem_host_alloc: sym!("cuMemHostAlloc"),
                mem_free_host: sym!("cuMemFreeHost"),
                memcpy_htod: sym!("cuMemcpyHtoD_v2"),
                memcpy_dtoh: sym!("cuMemcpyDtoH_v2"),
                memcpy_dtod: sym!("cuMemcpyDtoD_v2"),
                get_error_string: sym!("cuGetErrorString"),
            })
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn load() -> Result<Api, CudaProbeError> {
        Err(CudaProbeError::Unsupported)
    }

    /// `Ok(())` or an error naming the call and CUDA's description.
    unsafe fn check(&self, what: &'static str, r: CuResult) -> Result<(), CudaProbeError> {
        if r == 0 {
            return Ok(());
        }
        let mut s: *const c_char = std::ptr::null();
        let text = if (self.get_error_string)(r, &mut s) == 0 && !s.is_null() {
            CStr::from_ptr(s).to_string_lossy().into_owned()
        } else {
            "unknown error".into()
        };
        Err(CudaProbeError::CallFailed {
            what,
            code: r,
            text,
        })
    }
}

/// Looks up `name` (NUL-terminated) in `lib` as a function pointer of type `F`.
///
/// # Safety
/// `F` must be the C signature the library defines for that symbol.
#[cfg(target_os = "linux")]
unsafe fn symbol<F: Copy>(lib: *mut c_void, name: &'static str) -> Result<F, CudaProbeError> {
    assert_eq!(
        std::mem::size_of::<F>(),
        std::mem::size_of::<*mut c_void>(),
        "function pointers are pointer-sized"
    );
    let p = libc::dlsym(lib, name.as_ptr().cast());
    if p.is_null() {
        return Err(CudaProbeError::SymbolMissing(name.trim_end_matches('\0')));
    }
    Ok(std::mem::transmute_copy::<*mut c_void, F>(&p))
}

/// Frees what was allocated, in reverse order, on every exit path.
struct Resources<'a> {
    api: &'a Api,
    ctx: CuContext,
    device: [CuDevicePtr; 2],
    host: *mut c_void,
}

impl Drop for Resources<'_> {
    fn drop(&mut self) {
        // SAFETY: each handle is either null/0 (skipped) or was returned by the matching alloc.
        unsafe {
            if !self.host.is_null() {
                (self.api.mem_free_host)(self.host);
            }
            for d in self.device {
                if d != 0 {
                    (self.api.mem_free)(d);
                }
            }
            if !self.ctx.is_null() {
                (self.api.ctx_destroy)(self.ctx);
            }
        }
    }
}

unsafe fn measure(
    api: &Api,
    copy_bytes: usize,
    reps: usize,
) -> Result<Result<CudaGpu, CudaProbeError>, MeasureError> {
    let r = (api.init)(0);
    if r != 0 {
        return Ok(Err(api.check("cuInit", r).unwrap_err()));
    }
    let mut count = 0;
    if let Err(e) = api.check("cuDeviceGetCount", (api.device_get_count)(&mut count)) {
        return Ok(Err(e));
    }
    if count == 0 {
        return Ok(Err(CudaProbeError::NoDevice));
    }
    let gpu = measure_device(api, count, copy_bytes, reps).map_err(MeasureError::Gpu)?;
    if interrupt::interrupted() {
        return Err(MeasureError::Interrupted);
    }
    Ok(Ok(gpu))
}

unsafe fn measure_device(
    api: &Api,
    device_count: i32,
    copy_bytes: usize,
    reps: usize,
) -> Result<CudaGpu, CudaProbeError> {
    let mut dev: CuDevice = 0;
    api.check("cuDeviceGet", (api.device_get)(&mut dev, 0))?;
    let mut name_buf = [0 as c_char; 256];
    api.check(
        "cuDeviceGetName",
        (api.device_get_name)(name_buf.as_mut_ptr(), name_buf.len() as c_int, dev),
    )?;
    let name = CStr::from_ptr(name_buf.as_ptr())
        .to_string_lossy()
        .trim()
        .to_string();
    let mut total = 0usize;
    api.check(
        "cuDeviceTotalMem_v2",
        (api.device_total_mem)(&mut total, dev),
    )?;
    let attr = |a: c_int| {
        let mut v = 0;
        if (api.device_get_attribute)(&mut v, a, dev) == 0 {
            v
        } else {
            0
        }
    };
    let (sm_count, clock_khz) = (attr(ATTR_MULTIPROCESSOR_COUNT), attr(ATTR_CLOCK_RATE));
    let compute_capability = (attr(ATTR_CC_MAJOR), attr(ATTR_CC_MINOR));
    let integrated = attr(ATTR_INTEGRATED) != 0;

    let mut res = Resources {
        api,
        ctx: std::ptr::null_mut(),
        device: [0, 0],
        host: std::ptr::null_mut(),
    };
    api.check("cuCtxCreate_v2", (api.ctx_create)(&mut res.ctx, 0, dev))?;
    let (mut free, mut total_in_ctx) = (0usize, 0usize);
    api.check(
        "cuMemGetInfo_v2",
        (api.mem_get_info)(&mut free, &mut total_in_ctx),
    )?;
    api.check(
        "cuMemHostAlloc",
        (api.mem_host_alloc)(&mut res.host, copy_bytes, 0),
    )?;
    api.check(
        "cuMemAlloc_v2",
        (api.mem_alloc)(&mut res.device[0], copy_bytes),
    )?;
    api.check(
        "cuMemAlloc_v2",
        (api.mem_alloc)(&mut res.device[1], copy_bytes),
    )?;
    std::ptr::write_bytes(res.host.cast::<u8>(), 0x5a, copy_bytes);

    let (host, d0, d1) = (res.host, res.device[0], res.device[1]);
    let h2d = median_gbps(copy_bytes, reps, || {
        api.check("cuMemcpyHtoD_v2", (api.memcpy_htod)(d0, host, copy_bytes))
    })?;
    let d2h = median_gbps(copy_bytes, reps, || {
        api.check("cuMemcpyDtoH_v2", (api.memcpy_dtoh)(host, d0, copy_bytes))
    })?;
    // Device-to-device copies return before they finish; time a batch up to a synchronize.
    api.check("cuMemcpyDtoD_v2", (api.memcpy_dtod)(d1, d0, copy_bytes))?;
    api.check("cuCtxSynchronize", (api.ctx_synchronize)())?;
    let t = Instant::now();
    for _ in 0..reps.max(1) {
        api.check("cuMemcpyDtoD_v2", (api.memcpy_dtod)(d1, d0, copy_bytes))?;
    }
    api.check("cuCtxSynchronize", (api.ctx_synchronize)())?;
    let d2d = 2.0 * (copy_bytes * reps.max(1)) as f64 / t.elapsed().as_secs_f64() / 1e9;
    drop(res);
    Ok(CudaGpu {
        name,
        device_count,
        total_bytes: total as u64,
        free_bytes: free as u64,
        sm_count,
        clock_khz,
        compute_capability,
        integrated,
        h2d_gbps: h2d,
        d2h_gbps: d2h,
        d2d_gbps: d2d,
        copy_bytes,
    })
}

/// Median bandwidth over `reps` timed runs of a synchronous copy, after one untimed warm-up.
fn median_gbps(
    bytes: usize,
    reps: usize,
    mut copy: impl FnMut() -> Result<(), CudaProbeError>,
) -> Result<f64, CudaProbeError> {
    copy()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        if interrupt::interrupted() {
            break;
        }
        let t = Instant::now();
        copy()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::INFINITY);
    Ok(bytes as f64 / median / 1e9)
}

/// FP32 lanes per SM by compute capability (CUDA C Programming Guide, "Arithmetic Instructions"
/// throughput table); `None` for architectures newer than this table.
pub fn fp32_lanes_per_sm(cc: (i32, i32)) -> Option<u32> {
    match cc {
        (6, 0) | (7, _) | (8, 0) => Some(64),
        (5, _) | (6, _) | (8, _) | (9, 0) | (10, _) | (12, _) => Some(128),
        _ => None,
    }
}

/// Dense FP16 tensor-core FLOPs per SM per clock (FP32 accumulate for data-center parts), from
/// NVIDIA's whitepapers: V100 125 TF/80 SM/1.53 GHz = 1024; A100 312/108/1.41 = 2048; H100 SXM
/// 989/132/1.83 = 4096; Ada/Ampere consumer 1024 (fp16 accumulate); B200 ~8192.
pub fn fp16_tensor_flops_per_sm_clock(cc: (i32, i32)) -> Option<u32> {
    match cc {
        (7, _) | (8, 6) | (8, 7) | (8, 9) | (12, _) => Some(1024),
        (8, 0) => Some(2048),
        (9, 0) => Some(4096),
        (10, _) => Some(8192),
        _ => None,
    }
}
