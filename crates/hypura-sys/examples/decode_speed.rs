//! Plain llama.cpp decode speed through the raw FFI (llama.cpp defaults, greedy), for comparing
//! llama.cpp build settings: `cargo run -p hypura-sys --example decode_speed -- MODEL.gguf [N]`.

use hypura_sys as sys;
use std::ffi::CString;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: decode_speed MODEL.gguf [N]");
        std::process::exit(2);
    };
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let path = CString::new(path.as_str()).expect("path without NUL");
    let prompt = "The quick brown fox";
    // SAFETY: straight-line use of the llama.cpp C API with checked pointers.
    unsafe {
        sys::llama_backend_init();
        let model =
            sys::llama_model_load_from_file(path.as_ptr(), sys::llama_model_default_params());
        assert!(!model.is_null(), "model failed to load");
        let mut cp = sys::llama_context_default_params();
        cp.n_ctx = 512;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
        cp.n_threads = threads;
        cp.n_threads_batch = threads;
        let ctx = sys::llama_init_from_model(model, cp);
        assert!(!ctx.is_null(), "context failed");
        let vocab = sys::llama_model_get_vocab(model);
        let mut toks = vec![0i32; 64];
        let k = sys::llama_tokenize(
            vocab,
            prompt.as_ptr().cast(),
            prompt.len() as i32,
            toks.as_mut_ptr(),
            64,
            true,
            true,
        );
        assert!(k > 0);
        toks.truncate(k as usize);
        let smpl = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
        sys::llama_sampler_chain_add(smpl, sys::llama_sampler_init_greedy());
        let t0 = Instant::now();
        assert_eq!(
            sys::llama_decode(ctx, sys::llama_batch_get_one(toks.as_mut_ptr(), k)),
            0
        );
        let prompt_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        for _ in 0..n {
            let mut next = sys::llama_sampler_sample(smpl, ctx, -1);
            assert_eq!(
                sys::llama_decode(ctx, sys::llama_batch_get_one(&mut next, 1)),
                0
            );
        }
        let s = t1.elapsed().as_secs_f64();
        println!("prompt {k} tokens {prompt_s:.3} s; decode {n} tokens {s:.3} s = {:.2} tok/s ({threads} threads)", n as f64 / s);
        sys::llama_sampler_free(smpl);
        sys::llama_free(ctx);
        sys::llama_model_free(model);
    }
}
