//! Reads on the I/O pool with dense prefetch, on the real Gemma 3 270M with its FFN weights
//! streamed through a pool smaller than their total: greedy tokens equal plain llama.cpp's at
//! every prefetch and queue depth, a pool too small for the depth prefetches less instead of
//! failing, and a read error during a prefetch fails the decode, naming the file, without a hang.

mod common;

use common::*;
use model::Inventory;
use runtime::stream::IoOptions;
use runtime::Model;
use runtime::StreamedMemory;
use std::collections::BTreeMap;
use std::time::Duration;

/// Small requests, so a tensor is several requests and the queue depth has work to share.
const REQUEST: u64 = 256 << 10;

fn io(inv: &Inventory, queue_depth: u32, prefetch_depth: u32) -> IoOptions {
    IoOptions {
        queue_depth,
        request_bytes: REQUEST,
        prefetch_depth,
        n_layer: Some(inv.arch.n_layer),
        memory: StreamedMemory::Recycled,
    }
}

/// Reserved bytes of the streamed tensors of each layer.
fn layer_bytes(model: &Model) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    for t in model.streamed() {
        let layer = policy::use_order::UseOrder::layer_of(&t.name).unwrap();
        *out.entry(layer).or_default() += t.reserved as u64;
    }
    out
}

#[test]
fn every_prefetch_and_queue_depth_gives_plain_llama_cpp_tokens() {
    let path = gemma();
    let reference = plain_llama(&path);
    let inv = Inventory::from_gguf(&path).unwrap();
    let model = load_streamed_ffn(&path, &inv);
    let layers = layer_bytes(&model);
    let layer = *layers.values().max().unwrap();
    let total: u64 = layers.values().sum();
    for depth in [0, 1, 2] {
        for qd in [1, 4] {
            // The layer computing and `depth` layers ahead.
            let pool = (depth as u64 + 1) * layer;
            assert!(pool < total / 2);
            // Both fates of streamed memory (recycled pages, pages released to the kernel).
            let memory = if qd == 1 {
                StreamedMemory::Released
            } else {
                StreamedMemory::Recycled
            };
            let s = streamer(&model, &inv, &path, pool)
                .with_io(IoOptions {
                    memory,
                    ..io(&inv, qd, depth)
                })
                .unwrap();
            let r = run(&model, Some(s));
            let (stats, io) = (r.stats.unwrap(), r.io.unwrap());
            let at =
                format!("prefetch depth {depth}, queue depth {qd}, {memory:?}: {stats:?} {io:?}");
            assert_eq!(r.tokens.unwrap(), reference, "{at}");
            assert!(stats.peak_resident_bytes <= pool, "{at}");
            // The page pool holds the streaming pool's memory (stocked at load), no more.
            match memory {
                StreamedMemory::Recycled => assert!(
                    stats.recycled_bytes > 0 && stats.recycled_bytes <= pool,
                    "{at}"
                ),
                StreamedMemory::Released => assert_eq!(stats.recycled_bytes, 0, "{at}"),
            }
            assert!(io.max_in_flight <= qd, "{at}");
            // While busy, between one and max_in_flight requests run (timer slack: 1%).
            let depth_while_busy = io.request_s / io.busy_s;
            assert!(
                (0.99..=1.01 * io.max_in_flight as f64).contains(&depth_while_busy),
                "{at}"
            );
            // Tensors are larger than a request: each fill is several requests.
            assert!(io.requests >= 2 * stats.fills, "{at}");
            // Every layer is read once per token: 24 steps, most of 18 layers each.
            assert!(stats.fills >= 20 * 18 * 3, "{at}");
            assert!(stats.prefetches > 0, "{at}");
            if depth > 0 {
                // Most fills are read ahead of the node that uses them.
                assert!(2 * stats.prefetches > stats.fills, "{at}");
            }
        }
    }
}

#[test]
fn a_pool_too_small_for_the_depth_reads_ahead_less_with_the_same_tokens() {
    let path = gemma();
    let reference = plain_llama(&path);
    let inv = Inventory::from_gguf(&path).unwrap();
    let model = load_streamed_ffn(&path, &inv);
    let layer = *layer_bytes(&model).values().max().unwrap();
    let largest = model
        .streamed()
        .iter()
        .map(|t| t.reserved as u64)
        .max()
        .unwrap();
    let mut prefetches = Vec::new();
    for pool in [3 * layer, layer, largest] {
        let s = streamer(&model, &inv, &path, pool)
            .with_io(io(&inv, 4, 2))
            .unwrap();
        let r = run(&model, Some(s));
        let stats = r.stats.unwrap();
        assert_eq!(r.tokens.unwrap(), reference, "pool {pool}: {stats:?}");
        assert!(stats.peak_resident_bytes <= pool, "pool {pool}: {stats:?}");
        prefetches.push(stats.prefetches);
    }
    assert!(
        prefetches[0] > prefetches[1] && prefetches[1] > prefetches[2],
        "{prefetches:?}"
    );
    // A pool of the largest tensor holds only the node's own tensor: nothing is read ahead.
    assert_eq!(prefetches[2], 0);
}

#[test]
fn a_read_error_during_a_prefetch_fails_the_decode_without_hanging() {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let gemma = gemma();
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let path = dir.path().join("gemma.gguf");
        std::fs::copy(&gemma, &path).unwrap();
        let inv = Inventory::from_gguf(&path).unwrap();
        let model = load_streamed_ffn(&path, &inv);
        let layer = *layer_bytes(&model).values().max().unwrap();
        let s = streamer(&model, &inv, &path, 4 * layer)
            .with_io(io(&inv, 4, 2))
            .unwrap();
        // After loading, the file loses everything from layer 10's first FFN tensor on.
        let cut = inv
            .tensors
            .iter()
            .filter(|t| t.name.starts_with("blk.10.ffn_"))
            .map(|t| t.offset.unwrap())
            .min()
            .unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let r = run(&model, Some(s));
        let e = r
            .tokens
            .expect_err("decoding past the cut must fail")
            .to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("offset") && e.contains("short read"), "{e}");
        // The tensor named lies (partly) past the cut.
        let named = e.split("for tensor ").nth(1).unwrap();
        let t = inv
            .tensors
            .iter()
            .find(|t| named.starts_with(&format!("{}:", t.name)))
            .unwrap_or_else(|| panic!("no tensor named in {e}"));
        assert!(t.offset.unwrap() + t.bytes > cut, "{e}");
        // The tensors past the cut were read ahead (two layers before their use).
        let stats = r.stats.unwrap();
        assert!(stats.prefetches > 0, "{stats:?}");
        done.send(()).unwrap();
    });
    result
        .recv_timeout(Duration::from_secs(300))
        .expect("the failed decode hung or its checks failed");
}
